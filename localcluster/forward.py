"""Serve a Service of the cluster on 127.0.0.1, as `kubectl port-forward` would, for as long as the cluster runs.

The supervisor (daemon.py) owns the listeners, so they stop with the cluster. `request()` (the CLI
`python -m localcluster forward`) asks it for one through DIR/forwards.json and waits until the port
answers. Connections go to the Service's ClusterIP, which this host reaches through kube-proxy's rules.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from pathlib import Path

from .kubeapi import ApiError

REQUESTS = "forwards.json"
_SERVICE = re.compile(r"^([a-z0-9-]+)/([a-z0-9-]+):([0-9]+)$")


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Listener:
    def __init__(self, port: int, service: str, cluster):
        self.port, self.service, self.cluster = port, service, cluster
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        threading.Thread(target=self._accept, daemon=True, name=f"forward-{port}").start()

    def _target(self) -> tuple[str, int]:
        namespace, name, port = _SERVICE.match(self.service).groups()
        svc = self.cluster.client().get(f"/api/v1/namespaces/{namespace}/services/{name}")
        return svc["spec"]["clusterIP"], int(port)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target(), timeout=10)
                upstream.settimeout(None)
            except (OSError, ApiError, KeyError):
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self.sock.close()


class Forwards:
    """The supervisor's side: listeners for what DIR/forwards.json asks."""

    def __init__(self, workdir: Path, cluster):
        self.path = workdir / REQUESTS
        self.path.unlink(missing_ok=True)
        self.cluster = cluster
        self.listeners: dict[int, _Listener] = {}

    def reconcile(self) -> None:
        try:
            wanted = {int(k): v for k, v in json.loads(self.path.read_text()).items()}
        except (OSError, ValueError):
            return
        for port, service in wanted.items():
            current = self.listeners.get(port)
            if current and current.service == service:
                continue
            if current:
                current.close()
            try:
                self.listeners[port] = _Listener(port, service, self.cluster)
            except OSError as exc:
                print(f"forward 127.0.0.1:{port} -> {service}: {exc}", file=sys.stderr, flush=True)

    def stop(self) -> None:
        for listener in self.listeners.values():
            listener.close()
        self.listeners = {}


def request(workdir: Path, service: str, port: int, timeout: float = 10.0) -> int:
    """Ask the running cluster's supervisor to serve `service` (NAMESPACE/NAME:PORT) on 127.0.0.1:port."""
    if not _SERVICE.match(service):
        print(f"localcluster: --service {service!r} is not NAMESPACE/NAME:PORT", file=sys.stderr)
        return 2
    state = {}
    try:
        state = json.loads((workdir / "localcluster.json").read_text())
    except (OSError, ValueError):
        pass
    if state.get("status") != "running" or state.get("node") != "real":
        print("localcluster: no real node runs in this cluster; nothing to forward to", file=sys.stderr)
        return 1
    path = workdir / REQUESTS
    try:
        wanted = json.loads(path.read_text())
    except (OSError, ValueError):
        wanted = {}
    if wanted.get(str(port)) != service:
        with socket.socket() as probe:  # a port another program holds: say so, rather than wait
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                print(f"localcluster: 127.0.0.1:{port} is taken by another program; free it or pick "
                      "another port", file=sys.stderr)
                return 1
        wanted[str(port)] = service
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(wanted))
        tmp.replace(path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return 0
        except OSError:
            time.sleep(0.2)
    print(f"localcluster: the cluster did not open 127.0.0.1:{port} (see {workdir}/logs/supervisor.log)",
          file=sys.stderr)
    return 1
