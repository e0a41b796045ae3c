"""Rollback across a database migration, on real Langflow processes and the backup Jobs' real pods.

SQLite here; PostgreSQL (an external server, as the program deploys for it) in
tests/integration/test_database_real.py. Both run verify/drill.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from components.backups.spec import TOOL_SOURCE
from settings.model import LANGFLOW_DEFAULT_TAG, VERIFIED_LANGFLOW_VERSIONS
from settings.schemas import schema_head
from settings.stack_file import stack_values
from verify.checks import Report
from verify.drill import UpgradeDrill
from verify.install import ensure_langflow

pytestmark = pytest.mark.langflow
ROOT = Path(__file__).resolve().parents[2]
NEWEST = VERIFIED_LANGFLOW_VERSIONS[-1]


def test_an_upgrade_and_a_confirmed_rollback_leave_the_old_release_on_its_data():
    lines: list[str] = []
    ok = UpgradeDrill(stack_values(ROOT, "dev"), ROOT, "dev", LANGFLOW_DEFAULT_TAG, NEWEST,
                      report=Report(out=lines.append)).run()
    output = "\n".join(lines)
    assert ok, output
    for check in (f"Langflow {NEWEST} migrated the schema", "a restore without confirmation is refused",
                  "... and the database is unchanged", "a confirmed restore brings the snapshot back",
                  f"Langflow {LANGFLOW_DEFAULT_TAG} serves the pre-upgrade data: the user",
                  "the stored variable still decrypts", "the API key still runs a flow",
                  "the scheduled backup restores onto an emptied database"):
        assert f"  ok    {check}" in output, output


@pytest.mark.parametrize("version", VERIFIED_LANGFLOW_VERSIONS)
def test_the_schema_of_each_release_is_known_and_newer_backups_are_refused(version, tmp_path):
    """settings/schemas.py is what each release's package says; its image refuses a newer backup."""
    python = ensure_langflow(version) / "bin" / "python"
    head = subprocess.run([str(python), str(TOOL_SOURCE), "schema-head"], capture_output=True, text=True, check=True)
    assert head.stdout.strip() == schema_head(version)
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / "scheduled-1-from-the-future.sqlite").write_bytes(b"")
    (backups / "scheduled-1-from-the-future.json").write_text(json.dumps({
        "name": "scheduled-1-from-the-future", "kind": "scheduled", "label": "scheduled", "engine": "sqlite",
        "file": "scheduled-1-from-the-future.sqlite", "created": "2099-01-01T00:00:00+00:00",
        "schema_revision": "ffffffffffff", "langflow_version": "9.0.0"}))
    refused = subprocess.run([str(python), str(TOOL_SOURCE), "restore", "--dir", str(backups), "--database",
                              str(tmp_path / "langflow.db")], capture_output=True, text=True,
                             env={"CONFIRM": "restore", "PATH": "/usr/bin:/bin"})
    assert refused.returncode == 2 and "newer than this image knows" in refused.stderr, refused.stderr
    assert not (tmp_path / "langflow.db").exists()
