"""A very small Kubernetes API client on top of the standard library.

Only what the local cluster's own controllers and readiness checks need:
JSON requests over HTTPS with a client certificate, and a few helpers.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import urllib.parse
from typing import Any

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"


class ApiError(Exception):
    """A non-2xx answer from the API server."""

    def __init__(self, method: str, path: str, status: int, body: Any):
        self.method = method
        self.path = path
        self.status = status
        self.body = body
        message = body.get("message") if isinstance(body, dict) else str(body)[:300]
        super().__init__(f"{method} {path}: HTTP {status}: {message}")

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


class KubeClient:
    """HTTPS client for one API server, authenticating with a client cert.

    Connections are kept alive per thread; the client is safe to share
    between threads.
    """

    def __init__(self, server: str, ca_file: str, cert_file: str, key_file: str,
                 timeout: float = 15.0):
        url = urllib.parse.urlsplit(server)
        if url.scheme != "https" or not url.hostname:
            raise ValueError(f"expected an https:// server URL, got {server!r}")
        self.server = server
        self._host = url.hostname
        self._port = url.port or 443
        self._timeout = timeout
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
        ctx.load_cert_chain(cert_file, key_file)
        self._ssl = ctx
        self._local = threading.local()

    # -- transport ---------------------------------------------------------
    def _conn(self) -> http.client.HTTPSConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(
                self._host, self._port, context=self._ssl, timeout=self._timeout)
            self._local.conn = conn
        return conn

    def _drop_conn(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass
        self._local.conn = None

    def close(self) -> None:
        self._drop_conn()

    def request(self, method: str, path: str, body: Any = None,
                content_type: str = JSON, raw: bool = False) -> Any:
        """Send a request; return the decoded JSON body (or text if raw)."""
        data = None
        headers = {"Accept": JSON}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                break
            except (http.client.HTTPException, ConnectionError, ssl.SSLError, OSError):
                self._drop_conn()
                # A kept-alive connection may have been closed by the server;
                # retry once on a fresh connection, then give up.
                if attempt == 2:
                    raise
        text = payload.decode("utf-8", "replace")
        if resp.status >= 300:
            try:
                decoded: Any = json.loads(text)
            except ValueError:
                decoded = text
            raise ApiError(method, path, resp.status, decoded)
        if raw:
            return text
        return json.loads(text) if text else None

    # -- helpers -------------------------------------------------------------
    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def get_or_none(self, path: str) -> Any:
        try:
            return self.get(path)
        except ApiError as err:
            if err.not_found:
                return None
            raise

    def items(self, path: str) -> list:
        return self.get(path).get("items") or []

    def create(self, path: str, obj: dict) -> Any:
        return self.request("POST", path, obj)

    def ensure(self, path: str, obj: dict) -> Any:
        """Create obj in the collection at path unless it already exists."""
        try:
            return self.create(path, obj)
        except ApiError as err:
            if err.conflict:
                return None
            raise

    def merge_patch(self, path: str, patch: dict) -> Any:
        return self.request("PATCH", path, patch, content_type=MERGE_PATCH)

    def delete(self, path: str) -> Any:
        try:
            return self.request("DELETE", path)
        except ApiError as err:
            if err.not_found:
                return None
            raise

    def healthy(self, endpoint: str = "/readyz") -> bool:
        try:
            return self.request("GET", endpoint, raw=True).strip() == "ok"
        except (ApiError, OSError, http.client.HTTPException):
            return False
