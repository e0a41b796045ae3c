"""The ambassador's HAProxy, run for real with the config the program renders, on 127.0.0.1.

Only addresses change: the listening ports become free ports on 127.0.0.1, and the Langflow pods that
HAProxy would resolve from the headless Service become fixed servers (each with the same check, ejection
and retry settings), and a runtime API socket stands in for the cluster DNS dropping a stopping pod.
Everything else is the rendered haproxy.cfg, byte for byte. HAProxy comes from
Debian's package, the release of the pinned image (components/ambassador/spec.py).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Optional

from verify.process import _die_with_parent, free_port


class HAProxyUnavailable(Exception):
    pass


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if not found:
        raise HAProxyUnavailable("haproxy is not installed (Debian's package `haproxy`; make test installs it)")
    return found


def _once(pattern: str, replacement: str, text: str) -> str:
    new, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    if count != 1:
        raise ValueError(f"the rendered config has {count} lines matching {pattern!r}, expected one")
    return new


def _server(index: int) -> str:
    """The name of the `index`-th upstream (from 1) in the local config's Langflow backend."""
    return f"langflow{index}"


def local_config(rendered: str, upstreams: list[tuple[str, int]], api_port: int, admin_port: int,
                 runtime_socket: Optional[Path] = None) -> str:
    """The rendered haproxy.cfg with its addresses mapped to 127.0.0.1, and nothing else changed. With
    `runtime_socket`, HAProxy's runtime API listens there too: a test takes a server out of rotation through
    it, as a pod's removal from the headless Service's DNS does in the cluster."""
    text = _once(r"^(frontend api\n    bind )\S+$", rf"\g<1>127.0.0.1:{api_port}", rendered)
    if runtime_socket is not None:
        text = _once(r"^(global\n)", rf"\g<1>    stats socket {runtime_socket} mode 600 level admin\n", text)
    text = _once(r"^(frontend admin\n    bind )\S+$", rf"\g<1>127.0.0.1:{admin_port}", text)
    match = re.search(r"^    server-template langflow \d+ \S+ resolvers cluster init-addr none (.*)$", text, re.MULTILINE)
    if not match:
        raise ValueError("the rendered config has no server-template line for Langflow")
    servers = "\n".join(f"    server {_server(i)} {host}:{port} {match[1]}" for i, (host, port) in enumerate(upstreams, 1))
    text = text[:match.start()] + servers + text[match.end():]
    return _once(r"^resolvers cluster\n(    .*\n)+\n?", "", text)


class HAProxyProcess:
    """HAProxy in the foreground (`-W -db`, as the image runs it), its access log in `log_path`."""

    def __init__(self, rendered: str, upstreams: list[tuple[str, int]], workdir: Path, api_key: str):
        self.api_port, self.admin_port = free_port(), free_port()
        self.config_path = workdir / "haproxy.cfg"
        # A socket path holds at most 107 bytes, which a test's work folder can exceed: a short path of its own.
        self.runtime_socket = Path(tempfile.gettempdir()) / f"haproxy-{uuid.uuid4().hex[:12]}.sock"
        self.config_path.write_text(local_config(rendered, upstreams, self.api_port, self.admin_port,
                                                 self.runtime_socket))
        self.log_path = workdir / "haproxy.log"
        self.api_key = api_key
        self.proc: Optional[subprocess.Popen] = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self, budget: float = 10) -> None:
        binary = haproxy_binary()
        env = {"PATH": "/usr/sbin:/usr/bin:/bin", "LANGFLOW_API_KEY": self.api_key}
        check = subprocess.run([binary, "-c", "-f", str(self.config_path)], env=env, capture_output=True, text=True,
                               timeout=30)
        if check.returncode != 0:
            raise ValueError(f"haproxy refuses the config:\n{check.stdout}{check.stderr}")
        log = self.log_path.open("a")
        self.proc = subprocess.Popen([binary, "-W", "-db", "-f", str(self.config_path)], env=env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)
        log.close()
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            if self.request("/healthz")[0] == 200:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"haproxy did not start:\n{self.log_path.read_text()[-2000:]}")

    def request(self, path: str, method: str = "GET", body: Optional[bytes] = None,
                headers: Optional[dict[str, str]] = None, timeout: float = 30,
                port: Optional[int] = None) -> tuple[int, Any, dict[str, str]]:
        """(status, JSON body or text, headers by lowercase name); status 0 when nothing answered."""
        url = f"http://127.0.0.1:{port or self.api_port}{path}"
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw, got = response.status, response.read(), {k.lower(): v for k, v in response.headers.items()}
        except urllib.error.HTTPError as error:
            status, raw, got = error.code, error.read(), {k.lower(): v for k, v in error.headers.items()}
        except (urllib.error.URLError, OSError):
            return 0, None, {}
        try:
            return status, json.loads(raw), got
        except ValueError:
            return status, raw.decode(errors="replace"), got

    def take_out_of_rotation(self, server: int) -> None:
        """No new request goes to the `server`-th upstream (from 1), as when the cluster's DNS drops a stopping
        pod; requests in flight on it go on."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as runtime:
            runtime.settimeout(5)
            runtime.connect(str(self.runtime_socket))
            runtime.sendall(f"set server langflow/{_server(server)} state maint\n".encode())
            answer = runtime.recv(4096).decode().strip()
        if answer:
            raise RuntimeError(f"haproxy refused to take {_server(server)} out of rotation: {answer}")

    def access_log(self) -> list[dict[str, Any]]:
        """The JSON access log lines written so far."""
        out = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)  # the image's stop signal: finish what is in flight
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.runtime_socket.unlink(missing_ok=True)


class Relay:
    """A TCP relay on 127.0.0.1 in front of one server, recording what reached it: proof at the wire of
    what the proxy sent on (a header Langflow does not echo). Threads end when the relay closes."""

    def __init__(self, target_port: int):
        import socket
        import threading

        self.target_port, self.received = target_port, bytearray()
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:  # the server is gone: so is this connection, as it would be without the relay
                client.close()
                continue
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source, target, record: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if record:
                    with self._lock:
                        self.received += chunk
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, target):
                try:
                    end.shutdown(2)
                except OSError:
                    pass

    def close(self) -> None:
        self._server.close()
