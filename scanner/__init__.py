"""A maintained Kubernetes misconfiguration scanner (checkov) over every object both stacks render.

`render` writes each object the program registers for a stack (under Pulumi mocks, exactly what
`pulumi up` would send: tests/program.py) as a YAML manifest; `scan` runs checkov over them from its own
virtualenv (scripts/scanner-venv.sh, scanner/requirements.txt) and returns the failed checks, each a
(check id, object) pair (`Failure.key`), with the objects checked; an object is named `<stack> <Kind> <Pulumi resource name>` (a name that stays put when
content-hashed Kubernetes names change). tests/test_scanner.py holds them to the accepted list of
docs/security-scan.md. By hand: `.venv/bin/python -m scanner` prints them.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("dev", "prod")
CHECKOV_VERSION = "3.3.30"


@dataclass(frozen=True, order=True)
class Failure:
    check: str  # e.g. CKV_K8S_11
    object: str  # "<stack> <Kind> <Pulumi resource name>"
    title: str = ""

    def key(self) -> tuple[str, str]:
        return self.check, self.object


def manifests(stack: str) -> list[tuple[str, dict[str, Any]]]:
    """(object, manifest) for every Kubernetes object the stack registers; a ConfigGroup's objects as written."""
    # The dry-run test's reading of what the provider sends (no secret wrappers, whole numbers as integers).
    from tests.integration.test_dry_run import CONFIG_GROUP, manifest, plain
    from tests.program import run_program, stack_values

    run = run_program(stack_values(stack), stack)
    if run.error is not None:
        raise RuntimeError(f"the {stack} stack's program failed under mocks: {run.error}")
    out = []
    for resource in run.resources:
        if not resource.type.startswith("kubernetes:"):
            continue
        if resource.type == CONFIG_GROUP:
            for obj in plain(resource.inputs["objs"]):
                out.append((f"{stack} {obj['kind']} {resource.name}/{obj['metadata']['name']}", obj))
            continue
        obj = manifest(resource)
        out.append((f"{stack} {obj['kind']} {resource.name}", obj))
    return out


def render(directory: Path, stacks: Iterable[str] = STACKS,
           extra: Iterable[tuple[str, dict[str, Any]]] = ()) -> dict[str, tuple[str, str]]:
    """Write each stack's objects as YAML under `directory/<stack>/` (and `extra`, (object, manifest) pairs,
    under `directory/extra/`); the object each file holds and its kind, by the file's absolute path."""
    objects: dict[str, str] = {}
    groups = [(stack, manifests(stack)) for stack in stacks] + [("extra", list(extra))]
    for group, items in groups:
        (directory / group).mkdir(parents=True, exist_ok=True)
        for number, (name, obj) in enumerate(items):
            path = directory / group / f"{number:03d}-{obj['kind'].lower()}.yaml"
            path.write_text(yaml.safe_dump(obj, sort_keys=False))
            objects[str(path.resolve())] = (name, obj["kind"])
    return objects


def checkov_venv() -> Path:
    """checkov's virtualenv: LANGFLOW_SCANNER_VENV (scripts/test.sh sets it), else built once (cached) by
    scripts/scanner-venv.sh. Raises RuntimeError when it cannot be had."""
    override = os.environ.get("LANGFLOW_SCANNER_VENV")
    if override:
        venv = Path(override)
    else:
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "scanner-venv.sh")], cwd=ROOT,
                              capture_output=True, text=True)
        if proc.returncode != 0 or not proc.stdout.strip():
            raise RuntimeError(f"scripts/scanner-venv.sh exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
        venv = Path(proc.stdout.strip().splitlines()[-1])
    if not os.access(venv / "bin" / "checkov", os.X_OK):
        raise RuntimeError(f"no checkov in {venv} (scripts/scanner-venv.sh builds it)")
    return venv


def run_checkov(venv: Path, directory: Path) -> dict[str, Any]:
    """checkov's JSON report for `directory`, Kubernetes checks only, passed ones included."""
    # No calls out: no check for a newer checkov, nothing from the vendor's platform.
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
    proc = subprocess.run(
        [str(venv / "bin" / "checkov"), "--directory", str(directory), "--framework", "kubernetes",
         "--output", "json", "--compact", "--skip-download"],
        capture_output=True, text=True, env=env)
    # Exit 1: some check failed (the usual case); anything else, or no JSON, is checkov failing.
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"checkov exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as error:
        raise RuntimeError(f"checkov printed no JSON ({error}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    reports = [r for r in (report if isinstance(report, list) else [report]) if r.get("check_type") == "kubernetes"]
    if len(reports) != 1:
        raise RuntimeError(f"checkov gave {len(reports)} Kubernetes reports: {proc.stdout[:2000]}")
    return reports[0]


@dataclass
class Scan:
    failures: list[Failure]  # sorted
    checked: set[str]  # the objects at least one check ran on
    summary: dict[str, Any]  # checkov's: passed, failed, parsing_errors, resource_count, checkov_version
    kinds: dict[str, str]  # every object rendered, its kind


def scan(venv: Path, stacks: Iterable[str] = STACKS, extra: Iterable[tuple[str, dict[str, Any]]] = ()) -> Scan:
    """checkov over the stacks' objects (and `extra`)."""
    with tempfile.TemporaryDirectory(prefix="langflow-scan-") as scratch:
        directory = Path(scratch).resolve()
        objects = render(directory, stacks, extra)
        report = run_checkov(venv, directory)
    results = report.get("results", {})

    def obj(check: dict[str, Any]) -> str:
        return objects[str(Path(check["file_abs_path"]).resolve())][0]

    failures = {Failure(c["check_id"], obj(c), c.get("check_name", "")) for c in results.get("failed_checks", [])}
    checked = {obj(c) for kind in ("passed_checks", "failed_checks") for c in results.get(kind, [])}
    return Scan(sorted(failures), checked, report.get("summary", {}), dict(objects.values()))


def main() -> None:
    result = scan(checkov_venv())
    for failure in result.failures:
        print(f"{failure.check}\t{failure.object}\t{failure.title}")
    print(f"{len(result.failures)} failed checks of {len({f.check for f in result.failures})} rules "
          f"on {len({f.object for f in result.failures})} of {len(result.checked)} objects checked; "
          f"checkov: {result.summary}")
