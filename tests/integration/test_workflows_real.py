"""The GitHub Actions workflows, checked by the real actionlint the toolchain builds from Go modules.

actionlint parses each workflow, type-checks every `${{ }}` expression (contexts, matrix values, step
outputs), checks `needs:` between jobs, and checks the inputs given to well-known actions (checkout,
setup-python, setup-go, cache, pulumi/actions) against their metadata. It runs here with its optional
external linters off (`-shellcheck= -pyflakes=`): the result must not depend on what else is installed.
Each check is shown to fail on a workflow with one deliberate mistake. Local only: no network.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"


def _actionlint(toolchain_bin: Path, files: list[Path], cwd: Path) -> subprocess.CompletedProcess:
    cmd = [str(toolchain_bin / "actionlint"), "-no-color", "-shellcheck=", "-pyflakes=",
           *(str(f.relative_to(cwd)) for f in files)]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


def _workflow_files(root: Path) -> list[Path]:
    return sorted((root / ".github" / "workflows").glob("*.yml"))


def test_actionlint_is_the_pinned_version(toolchain_bin):
    pinned = next(line.split("=", 1)[1].strip()
                  for line in (REPO / "toolchain" / "versions.env").read_text().splitlines()
                  if line.startswith("ACTIONLINT_VERSION="))
    proc = subprocess.run([str(toolchain_bin / "actionlint"), "-version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == pinned


def test_workflows_pass_actionlint(toolchain_bin):
    files = _workflow_files(REPO)
    assert {f.name for f in files} >= {"pull-request.yml", "deploy.yml"}
    proc = _actionlint(toolchain_bin, files, REPO)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


# One deliberate mistake each: (workflow, text replaced, replacement, what actionlint must name).
MISTAKES = {
    "unknown-needs": ("deploy.yml", "    needs: dev\n", "    needs: staging\n", '"staging"'),
    "undefined-matrix-value": ("pull-request.yml", "group: preview-${{ matrix.stack }}-",
                               "group: preview-${{ matrix.stak }}-", '"stak"'),
    "unknown-action-input": ("pull-request.yml", "          policyPacks: policy\n",
                             "          policy-packs: policy\n", '"policy-packs"'),
    "broken-expression": ("deploy.yml", "${{ secrets.PULUMI_CONFIG_PASSPHRASE_PROD }}",
                          "${{ secrets.PULUMI_CONFIG_PASSPHRASE_PROD }", "end marker }}"),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_actionlint_fails_on_a_broken_copy(toolchain_bin, tmp_path, mistake):
    name, old, new, named = MISTAKES[mistake]
    shutil.copytree(REPO / ".github", tmp_path / ".github")
    (tmp_path / ".git").mkdir()  # actionlint's project root, as in the repository
    broken = tmp_path / ".github" / "workflows" / name
    text = broken.read_text()
    assert text.count(old) == 1, f"{name} no longer contains {old!r}: update this test's mistake"
    broken.write_text(text.replace(old, new))

    proc = _actionlint(toolchain_bin, _workflow_files(tmp_path), tmp_path)
    assert proc.returncode != 0
    problems = [line for line in proc.stdout.splitlines() if line.startswith(".github/workflows/")]
    assert problems, proc.stdout + proc.stderr
    assert all(line.startswith(f".github/workflows/{name}:") for line in problems), proc.stdout
    assert named in proc.stdout, proc.stdout

    # Restored, the copy passes again: the failure was the mistake's, not the copy's.
    broken.write_text(text)
    proc = _actionlint(toolchain_bin, _workflow_files(tmp_path), tmp_path)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")
