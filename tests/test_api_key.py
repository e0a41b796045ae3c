"""The ambassador's key script (flowsync/api_key.py) against a stand-in Langflow that knows its keys.

Real Langflow runs it in tests/langflow/test_flow_sync_real.py; its Secrets on a real API server, with
the Role the program renders, in tests/integration/test_ambassador_key_real.py.
"""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from flowsync import API_KEY_SCRIPT
from flowsync.api_key import FileStore, ensure_key
from flowsync.sync import SyncError
from tests.stand_ins import StandInServer


class StandInLangflow(StandInServer):
    """Auto-login, key creation and whoami, as Langflow 1.6 answers them; `keys` are the ones it accepts."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.created = 0
        super().__init__(self._answer)

    def _answer(self, method: str, path: str, headers: dict[str, str]):
        if (method, path) == ("GET", "/api/v1/auto_login"):
            return 200, {"access_token": "token"}
        if (method, path) == ("GET", "/api/v1/users/whoami"):
            return (200, {"username": "langflow"}) if headers.get("x-api-key") in self.keys else \
                (403, {"detail": "Invalid API key"})
        if (method, path) == ("POST", "/api/v1/api_key/") and headers.get("authorization") == "Bearer token":
            self.created += 1
            self.keys.add(f"sk-made-{self.created}")
            return 200, {"name": "langflow-ambassador", "api_key": f"sk-made-{self.created}"}
        return 403, {"detail": "no"}


@pytest.fixture
def langflow() -> Iterator[StandInLangflow]:
    stand_in = StandInLangflow()
    yield stand_in
    stand_in.close()


def test_a_key_is_made_once_and_kept_while_langflow_accepts_it(langflow, tmp_path: Path):
    store, lines = FileStore(tmp_path / "key"), []
    assert ensure_key(langflow.url, [store], lines.append) is True
    assert store.read() == "sk-made-1" and stat.S_IMODE((tmp_path / "key").stat().st_mode) == 0o600
    assert ensure_key(langflow.url, [store], lines.append) is False and langflow.created == 1
    assert lines[-1] == "api-key: the stored key works: kept"
    assert not any("sk-" in line for line in lines)  # never printed


def test_a_key_langflow_no_longer_accepts_is_replaced_everywhere(langflow, tmp_path: Path):
    first, second = FileStore(tmp_path / "a"), FileStore(tmp_path / "b")
    first.write("sk-revoked")
    assert ensure_key(langflow.url, [first, second], lambda _: None) is True
    assert first.read() == second.read() == "sk-made-1"
    # A second store that drifted is brought in line with the first, without a new key.
    second.write("sk-other")
    assert ensure_key(langflow.url, [first, second], lambda _: None) is False and second.read() == "sk-made-1"


def test_the_script_fails_clearly_and_names_what(langflow, tmp_path: Path):
    done = subprocess.run([sys.executable, str(API_KEY_SCRIPT), "--url", "http://127.0.0.1:9", "--file",
                           str(tmp_path / "key")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.startswith("api-key: FAILED: GET /api/v1/auto_login: Langflow at "
                                                           "http://127.0.0.1:9 did not answer"), done.stderr
    ok = subprocess.run([sys.executable, str(API_KEY_SCRIPT), "--url", langflow.url, "--file", str(tmp_path / "key")],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "a new key was created" in ok.stdout and "sk-" not in ok.stdout
    with pytest.raises(SyncError):
        ensure_key("http://127.0.0.1:9", [FileStore(tmp_path / "none")], lambda _: None)
