"""Single sign-on with the real programs: Dex and oauth2-proxy, built from Go modules, configured by the program.

The real engine deploys a stack with the Ingress and SSO on the local cluster. Then:
* Dex runs on 127.0.0.1 with its Kubernetes storage on that cluster and a static password user: it can only
  sign anyone in to the client if it finds the OAuth2Client `pulumi up` created, under the name it derives;
* oauth2-proxy runs with exactly the flags and env the program generated, read back from the API server,
  addresses mapped to 127.0.0.1 (it terminates TLS for the ingress host itself, standing in for the ingress);
* a scripted browser (an HTTP client that keeps cookies) signs in through both and reaches the upstream,
  signs out, and is sent back to Dex without a session.
"""

from __future__ import annotations

import base64
import http.client
import http.cookiejar
import http.server
import re
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.integration.pulumi_project import Project

pytestmark = pytest.mark.integration

HOST = "langflow.example.test"
USER, PASSWORD = "admin@example.test", "sign-in-test-password"
# bcrypt of PASSWORD (Dex keeps static passwords hashed).
PASSWORD_HASH = "$2b$10$tX19tmwOl09p6fnNi6eYuuZ7diZ3mcfR3/DSInMPvuw96w07Adt.6"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(what: str, ready, log: Path, timeout: float = 60) -> None:
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except OSError as error:
            last = error
        time.sleep(0.3)
    pytest.fail(f"{what} did not come up in {timeout} s (last: {last!r})\n{log.read_text()[-3000:]}")


class Upstream(http.server.BaseHTTPRequestHandler):
    """Stands in for Langflow: answers with the user oauth2-proxy passed on."""

    def do_GET(self):  # noqa: N802 - http.server's name
        body = f"upstream says hello to {self.headers.get('X-Forwarded-Email')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """The ingress host resolves to 127.0.0.1:<port> here; the certificate is still checked for the host."""

    port_map: dict[str, int] = {}

    def connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port_map[self.host]), self.timeout)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)


class Browser:
    def __init__(self, ca_file: Path, https_port: int):
        PinnedHTTPSConnection.port_map = {HOST: https_port}
        context = ssl.create_default_context(cafile=str(ca_file))

        class Handler(urllib.request.HTTPSHandler):
            def https_open(self, request):
                return self.do_open(PinnedHTTPSConnection, request, context=context)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        self.cookies = http.cookiejar.CookieJar()
        # Two openers over one cookie jar (handlers belong to one opener each).
        self.following = urllib.request.build_opener(Handler(), urllib.request.HTTPCookieProcessor(self.cookies))
        self.stopping = urllib.request.build_opener(Handler(), urllib.request.HTTPCookieProcessor(self.cookies),
                                                    NoRedirect())

    def get(self, url: str, data: bytes | None = None, follow: bool = True) -> tuple[int, str, str]:
        """(status, final URL, body); `follow=False` stops at the first redirect."""
        opener = self.following if follow else self.stopping
        try:
            with opener.open(url, data=data, timeout=30) as answer:
                return answer.status, answer.geturl(), answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Location") or url, error.read().decode()


@pytest.fixture
def certificate(tmp_path) -> tuple[Path, Path]:
    """A self-signed certificate for the ingress host (the ingress' TLS, which oauth2-proxy stands in for)."""
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={HOST}",
                    "-addext", f"subjectAltName=DNS:{HOST}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def start(argv: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)


def test_sign_in_through_oauth2_proxy_and_dex(toolchain_bin, local_cluster, tmp_path, certificate):
    cluster = local_cluster()
    client = cluster.client()
    dex_port, upstream_port, proxy_http_port = free_port(), free_port(), free_port()
    issuer = f"http://127.0.0.1:{dex_port}/dex"

    # The stack: dev with the Ingress (TLS from an existing Secret) and SSO on.
    project = Project(tmp_path, "dev", toolchain_bin, cluster.kubeconfig)
    document = yaml.safe_load(project.stack_file().read_text())
    document["config"].update({
        "langflow:ingress": {"enabled": True, "hosts": [{"host": HOST}], "tls": {"mode": "secret", "secret_name": "langflow-tls"}},
        "langflow:sso": {"enabled": True, "issuer_url": issuer, "client_id": "langflow", "oauth2_proxy": {"replicas": 1}},
    })
    project.stack_file().write_text(yaml.safe_dump(document))
    project.up()

    (proxy_deployment,) = [d for d in client.items("/apis/apps/v1/namespaces/langflow-dev/deployments")
                           if d["metadata"]["name"] == "langflow-oauth2-proxy"]
    (container,) = proxy_deployment["spec"]["template"]["spec"]["containers"]
    secret = {k: base64.b64decode(v).decode() for k, v in
              client.get("/api/v1/namespaces/langflow-dev/secrets/langflow-oauth2-proxy")["data"].items()}
    clients = client.items("/apis/dex.coreos.com/v1/namespaces/cpaas-system/oauth2clients")
    assert [c["id"] for c in clients] == ["langflow"] and clients[0]["secret"] == secret["client-secret"]

    processes: list[subprocess.Popen] = []
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", upstream_port), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        # Dex, on the cluster the program wrote its client to, in the platform's namespace.
        kubeconfig = yaml.safe_load(cluster.kubeconfig.read_text())
        for context in kubeconfig["contexts"]:
            context["context"]["namespace"] = "cpaas-system"
        (tmp_path / "dex-kubeconfig").write_text(yaml.safe_dump(kubeconfig))
        (tmp_path / "dex.yaml").write_text(yaml.safe_dump({
            "issuer": issuer,
            "storage": {"type": "kubernetes", "config": {"kubeConfigFile": str(tmp_path / "dex-kubeconfig")}},
            "web": {"http": f"127.0.0.1:{dex_port}"},
            "enablePasswordDB": True,
            "staticPasswords": [{"email": USER, "hash": PASSWORD_HASH, "username": "admin",
                                 "userID": "08a8684b-db88-4b73-90a9-3cd1661f5466"}],
            "oauth2": {"skipApprovalScreen": True},
        }))
        processes.append(start([str(toolchain_bin / "dex"), "serve", str(tmp_path / "dex.yaml")], tmp_path / "dex.log"))
        wait_until("Dex", lambda: urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=2).status == 200,
                   tmp_path / "dex.log")

        # oauth2-proxy, exactly as deployed; only the addresses are this machine's.
        args = []
        for arg in container["args"]:
            if arg.startswith("--upstream="):
                arg = f"--upstream=http://127.0.0.1:{upstream_port}/"
            elif arg.startswith("--http-address="):
                arg = f"--http-address=127.0.0.1:{proxy_http_port}"
            args.append(arg)
        cert, key = certificate
        args += ["--https-address=127.0.0.1:443", f"--tls-cert-file={cert}", f"--tls-key-file={key}"]
        env = {"OAUTH2_PROXY_CLIENT_SECRET": secret["client-secret"], "OAUTH2_PROXY_COOKIE_SECRET": secret["cookie-secret"]}
        processes.append(start([str(toolchain_bin / "oauth2-proxy"), *args], tmp_path / "oauth2-proxy.log", env))
        browser = Browser(cert, 443)
        # With a TLS certificate oauth2-proxy serves HTTPS only: ask its readiness there.
        wait_until("oauth2-proxy", lambda: browser.get(f"https://{HOST}/ready")[0] == 200, tmp_path / "oauth2-proxy.log")
        # Without a session: off to Dex, for this client, with the exact callback.
        status, location, _ = browser.get(f"https://{HOST}/", follow=False)
        assert status == 302 and location.startswith(f"{issuer}/auth?"), (status, location)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
        assert query["client_id"] == ["langflow"] and query["redirect_uri"] == [f"https://{HOST}/oauth2/callback"]
        assert query["code_challenge_method"] == ["S256"]

        # Dex finds the client (else: "Unregistered redirect_uri" / invalid client) and shows its login form.
        status, form_url, page = browser.get(f"https://{HOST}/")
        assert status == 200 and 'name="password"' in page, (status, form_url, page[:500])
        action = re.search(r'<form[^>]*action="([^"]*)"', page).group(1).replace("&amp;", "&")
        login = urllib.parse.urljoin(form_url, action)
        status, url, body = browser.get(login, data=urllib.parse.urlencode({"login": USER, "password": PASSWORD}).encode())
        assert status == 200 and body == f"upstream says hello to {USER}", (status, url, body[:500])
        assert url == f"https://{HOST}/"

        # Signed in, the session carries on; signing out ends it.
        assert browser.get(f"https://{HOST}/")[2] == f"upstream says hello to {USER}"
        browser.get(f"https://{HOST}/oauth2/sign_out", follow=False)
        status, location, _ = browser.get(f"https://{HOST}/", follow=False)
        assert status == 302 and location.startswith(f"{issuer}/auth?"), (status, location)
    finally:
        upstream.shutdown()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
