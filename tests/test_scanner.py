"""A maintained misconfiguration scanner (checkov 3.3.30) over every object both stacks render.

What it finds must be exactly the accepted list of docs/security-scan.md, each rule there with its reason:
a new failure fails the test, and so does a fixed one still listed (the list is kept true). checkov runs
from its own virtualenv (scanner/requirements.txt, built once and cached by scripts/scanner-venv.sh); with
CI=true a scanner that cannot be had fails the test instead of skipping it. One checkov run for the module.
"""

from __future__ import annotations

import os
import re

import pytest

from scanner import CHECKOV_VERSION, ROOT, Scan, checkov_venv, scan

pytestmark = pytest.mark.scanner

DOC = ROOT / "docs" / "security-scan.md"
WORKLOADS = ("Deployment", "StatefulSet", "Job", "CronJob")
# Known bad, scanned beside the stacks: the scanner can fail.
CANARY = ("canary Pod privileged", {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "privileged", "namespace": "canary"},
    "spec": {"containers": [{"name": "c", "image": "busybox:1.37", "securityContext": {"privileged": True}}]}})


def accepted() -> set[tuple[str, str]]:
    """The doc's accepted failures: the lines of its ```accepted block, `<check id> <object>`."""
    block = re.search(r"^```accepted\n(.*?)^```", DOC.read_text(), re.S | re.M)
    assert block, f"{DOC} has no ```accepted block"
    pairs = [tuple(line.split(" ", 1)) for line in block.group(1).splitlines() if line.strip()]
    assert len(pairs) == len(set(pairs)), "a pair is listed twice"
    return set(pairs)


def reasons() -> set[str]:
    """The rules the doc says why it accepts: its lines `- `CKV_...` ...`."""
    return set(re.findall(r"^- `(CKV2?_K8S_\d+)`", DOC.read_text(), re.M))


@pytest.fixture(scope="module")
def result() -> Scan:
    try:
        venv = checkov_venv()
    except RuntimeError as error:
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"checkov unavailable: {error}", pytrace=False)
        pytest.skip(f"checkov unavailable: {error}")
    return scan(venv, extra=[CANARY])


def test_the_scanner_is_the_pinned_checkov_and_checks_every_workload(result):
    assert result.summary["checkov_version"] == CHECKOV_VERSION
    assert result.summary["parsing_errors"] == 0
    workloads = {name for name, kind in result.kinds.items() if kind in WORKLOADS and not name.startswith("canary ")}
    assert len(workloads) >= 15 and workloads <= result.checked, workloads - result.checked


def test_the_scanner_can_fail(result):
    assert ("CKV_K8S_16", CANARY[0]) in {f.key() for f in result.failures}


def test_failed_checks_are_exactly_the_accepted_ones(result):
    found = {f.key() for f in result.failures if not f.object.startswith("canary ")}
    titles = {f.key(): f.title for f in result.failures}
    listed = accepted()
    new = sorted(found - listed)
    fixed = sorted(listed - found)
    assert not new and not fixed, (
        "checkov's failures differ from docs/security-scan.md's accepted list.\n"
        + "".join(f"  new (fix it, or list it with a reason): {c} {o}  ({titles[c, o]})\n" for c, o in new)
        + "".join(f"  no longer failing (take it off the list): {c} {o}\n" for c, o in fixed))


def test_each_accepted_rule_says_why():
    assert reasons() == {check for check, _ in accepted()}
