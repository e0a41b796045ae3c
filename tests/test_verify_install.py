"""The cached Langflow virtualenvs of `make verify`: one installer at a time per release."""

from __future__ import annotations

import threading
import time

from verify import install


def test_two_callers_never_install_one_release_at_once(tmp_path, monkeypatch):
    # The two test streams run side by side; on a cold machine both ask for the same release.
    monkeypatch.setenv("LANGFLOW_TOOLCHAIN_CACHE", str(tmp_path))
    inside, most, installs = [0], [0], []
    guard = threading.Lock()

    def slow_install(version, target, log):
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        marker = target / ".installed.json"
        if not marker.exists():
            installs.append(version)
            time.sleep(0.3)
            target.mkdir(parents=True, exist_ok=True)
            marker.write_text("{}")
        with guard:
            inside[0] -= 1
        return target

    monkeypatch.setattr(install, "_ensure_installed", slow_install)
    version = install.locked_versions()[0]
    callers = [threading.Thread(target=install.ensure_langflow, args=(version,)) for _ in range(3)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert most[0] == 1 and installs == [version]
