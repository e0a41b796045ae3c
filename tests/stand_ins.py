"""Small HTTP servers on 127.0.0.1 that stand in for Langflow where a test needs an exact answer."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional

# handler(method, path, headers) -> (status, JSON body), or None to drop the connection without an answer.
Answer = Callable[[str, str, dict[str, str]], Optional[tuple[int, Any]]]


class StandInServer:
    """Serves `answer` on a free port of 127.0.0.1, in threads that stop with `close()`."""

    def __init__(self, answer: Answer):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                result = answer(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                if result is None:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                raw = json.dumps(result[1]).encode()
                self.send_response(result[0])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
