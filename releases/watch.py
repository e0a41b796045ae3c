"""A bound on how long an update waits for a Kubernetes API server that does not answer.

The Kubernetes provider keeps waiting for a rollout while the API server is down, up to the
rollout deadline (600 s by default; measured: an image update still waited minutes into an outage). `ApiServerWatch`
probes the API server beside the update; when it has not answered for `limit` seconds, it
interrupts the Pulumi CLI as Ctrl-C does (SIGINT: the engine cancels and exits in seconds),
and the update fails with a message that says so. What the interrupted update leaves is
settled by the next command (releases/recovery.py).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Callable, Optional

from releases import processes


class ApiServerWatch:
    def __init__(self, probe: Callable[[], bool], limit: float, interval: float = 2.0,
                 interrupt: Optional[Callable[[], None]] = None):
        self.probe, self.limit, self.interval = probe, limit, interval
        self.interrupt = interrupt or interrupt_pulumi
        self.silent_for: Optional[float] = None  # set when the watch stopped the update
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="api-server-watch", daemon=True)

    def __enter__(self) -> "ApiServerWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        answered = time.monotonic()
        while not self._stop.wait(self.interval):
            if self.probe():
                answered = time.monotonic()
            elif time.monotonic() - answered >= self.limit:
                self.silent_for = time.monotonic() - answered
                self.interrupt()
                return


def interrupt_pulumi() -> None:
    """SIGINT to the Pulumi CLI processes this process started (the Automation API's)."""
    for pid in processes.children(os.getpid(), "pulumi"):
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            pass


def kubernetes_probe(api_client) -> Callable[[], bool]:
    """True when the API server answers /version within a few seconds."""
    from kubernetes import client

    version = client.VersionApi(api_client)

    def answers() -> bool:
        try:
            version.get_code(_request_timeout=3)
            return True
        except Exception:  # noqa: BLE001 - any failure to answer counts as silence
            return False
    return answers
