"""Single sign-on with the real programs: Dex and oauth2-proxy, built from Go modules, configured by the program.

The real engine deploys a stack with the Ingress and SSO on the local cluster. Then:
* Dex runs on 127.0.0.1 with its Kubernetes storage on that cluster and a static password user: it can only
  sign anyone in to the client if it finds the OAuth2Client `pulumi up` created, under the name it derives;
* oauth2-proxy runs with exactly the flags and env the program generated, read back from the API server,
  addresses mapped to 127.0.0.1 (it terminates TLS for the ingress host itself, standing in for the ingress);
* a scripted browser (an HTTP client that keeps cookies) signs in through both and reaches the upstream,
  signs out, and is sent back to Dex without a session.

Per-user identity (sso.identity) needs no cluster: Dex (https, from a private CA), oauth2-proxy and a real
Langflow 1.13.0 run with what the decision functions generate, and each person Dex signs in is their own
Langflow user, through the API and in Debian's headless Chromium.

oauth2-proxy keeps its sessions in Debian's redis-server (the release the pinned image carries), started
with the program's config file and arguments: signing out deletes the session, so a copy of the cookie
stops reaching Langflow; the API paths take an API key and refuse a person's Dex token; forged
X-Forwarded-* headers change nothing.
"""

from __future__ import annotations

import base64
import http.client
import http.cookiejar
import http.server
import json
import os
import re
import shutil
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

from tests.integration.conftest import headless_chromium
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
        self.sock = socket.create_connection(("127.0.0.1", self.port_map.get(self.host, self.port)), self.timeout)
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

    def get(self, url: str, data: bytes | None = None, follow: bool = True,
            headers: dict[str, str] | None = None) -> tuple[int, str, str]:
        """(status, final URL, body); `follow=False` stops at the first redirect."""
        opener = self.following if follow else self.stopping
        try:
            with opener.open(urllib.request.Request(url, data=data, headers=headers or {}), timeout=30) as answer:
                return answer.status, answer.geturl(), answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Location") or url, error.read().decode()


def issue_certificate(folder: Path, name: str, subject_alt_name: str, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """A server certificate signed by the platform's private CA `ca` (certificate, key)."""
    cert, key, request = folder / f"{name}.crt", folder / f"{name}.key", folder / f"{name}.csr"
    extensions = folder / f"{name}.ext"
    extensions.write_text(f"subjectAltName={subject_alt_name}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(key),
                    "-out", str(request)], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(request), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
                    "-CAcreateserial", "-days", "1", "-extfile", str(extensions), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture
def private_ca(tmp_path) -> tuple[Path, Path]:
    """The platform's private CA: it signs the ingress host's certificate (the ingress' TLS, which oauth2-proxy
    stands in for) and Dex's."""
    cert, key = tmp_path / "platform-ca.crt", tmp_path / "platform-ca.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=platform CA",
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def start(argv: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)


def sign_in(browser: Browser, url: str, user: str) -> tuple[int, str, str]:
    """Open `url` without a session: oauth2-proxy sends the browser to Dex's form; sign in there as `user`."""
    status, form_url, page = browser.get(url)
    assert status == 200 and 'name="password"' in page, (status, form_url, page[:500])
    action = re.search(r'<form[^>]*action="([^"]*)"', page).group(1).replace("&amp;", "&")
    return browser.get(urllib.parse.urljoin(form_url, action),
                       data=urllib.parse.urlencode({"login": user, "password": PASSWORD}).encode())


def redis_server_binary() -> str:
    found = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK)
                                             else None)
    if found is None:
        reason = "Debian's redis-server is not installed (scripts/test.sh installs it)"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def redis_probe(port: int, password: str) -> bool:
    """The pod's readiness probe, as the program writes it, against this host's port."""
    from components.edge import spec as edge_spec

    return subprocess.run(edge_spec.redis_probe_command(port), env={**os.environ, "REDISCLI_AUTH": password},
                          capture_output=True, timeout=10).returncode == 0


def session_store(tmp_path: Path, programs: list, config_file: str, password: str) -> tuple[int, str]:
    """Debian's redis-server with the program's config file (the Secret's) and arguments; only the port, the
    address and the working folder are this host's. Returns the port and the URL for oauth2-proxy. Stopped
    with `programs`, also when the test fails."""
    from components.edge import spec as edge_spec
    from settings.edge import RedisConfig

    port = free_port()
    conf = tmp_path / edge_spec.REDIS_CONFIG_KEY
    conf.write_text(config_file)
    conf.chmod(0o600)
    args = edge_spec.redis_args(RedisConfig())
    assert args[:2] == ["redis-server", f"{edge_spec.REDIS_CONFIG_DIR}/{edge_spec.REDIS_CONFIG_KEY}"]
    args[:2] = [redis_server_binary(), str(conf)]
    args[args.index("--port") + 1] = str(port)
    programs.append(start([*args, "--bind", "127.0.0.1", "--dir", str(tmp_path)], tmp_path / "redis.log"))
    wait_until("redis-server", lambda: redis_probe(port, password), tmp_path / "redis.log", timeout=30)
    # The probe checks the password, not only that something answers.
    assert not redis_probe(port, password + "-wrong")
    return port, f"redis://127.0.0.1:{port}"


def redis_keys(port: int, password: str) -> int:
    answer = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "dbsize"], capture_output=True,
                            text=True, env={**os.environ, "REDISCLI_AUTH": password}, timeout=10, check=True)
    return int(answer.stdout.strip())


def copied_cookie(browser: "Browser") -> str:
    """oauth2-proxy's cookie, as someone who copied it from the browser would send it."""
    cookies = [f"{c.name}={c.value}" for c in browser.cookies if c.name.startswith("_oauth2_proxy")]
    assert cookies, [c.name for c in browser.cookies]
    return "; ".join(cookies)


@pytest.fixture
def programs():
    """Processes a test starts: always stopped, even when it fails."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        process.terminate()
    for process in started:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def test_sign_in_through_oauth2_proxy_and_dex(toolchain_bin, local_cluster, tmp_path, private_ca, programs):
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
    # dev runs Langflow 1.6.4: the identity is shared (no token passed on, no external authentication).
    assert not any(arg.startswith("--pass-authorization-header") for arg in container["args"])
    (langflow,) = [d for d in client.items("/apis/apps/v1/namespaces/langflow-dev/deployments")
                   if d["metadata"]["name"] == "langflow"]
    assert not any(e["name"].startswith("LANGFLOW_EXTERNAL_AUTH_")
                   for e in langflow["spec"]["template"]["spec"]["containers"][0]["env"])
    secret = {k: base64.b64decode(v).decode() for k, v in
              client.get("/api/v1/namespaces/langflow-dev/secrets/langflow-oauth2-proxy")["data"].items()}
    clients = client.items("/apis/dex.coreos.com/v1/namespaces/cpaas-system/oauth2clients")
    assert [c["id"] for c in clients] == ["langflow"] and clients[0]["secret"] == secret["client-secret"]
    # Sessions live in the stack's Redis; its Secret holds the password oauth2-proxy gets and the server's file.
    redis = {k: base64.b64decode(v).decode() for k, v in
             client.get("/api/v1/namespaces/langflow-dev/secrets/langflow-oauth2-proxy-redis")["data"].items()}
    assert "--session-store-type=redis" in container["args"]
    assert {"name": "OAUTH2_PROXY_REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {
        "name": "langflow-oauth2-proxy-redis", "key": "password"}}} in container["env"]
    # No X-Forwarded-* header is believed (no --reverse-proxy).
    assert not any(a.startswith(("--reverse-proxy", "--trusted-ip")) for a in container["args"])

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
        programs.append(start([str(toolchain_bin / "dex"), "serve", str(tmp_path / "dex.yaml")], tmp_path / "dex.log"))
        wait_until("Dex", lambda: urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=2).status == 200,
                   tmp_path / "dex.log")

        # The session store: Debian's redis-server with the file and password of the deployed Secret.
        redis_port, redis_url = session_store(tmp_path, programs, redis["redis.conf"], redis["password"])

        # oauth2-proxy, exactly as deployed; only the addresses are this machine's.
        args = []
        for arg in container["args"]:
            if arg.startswith("--upstream="):
                arg = f"--upstream=http://127.0.0.1:{upstream_port}/"
            elif arg.startswith("--http-address="):
                arg = f"--http-address=127.0.0.1:{proxy_http_port}"
            elif arg.startswith("--redis-connection-url="):
                arg = f"--redis-connection-url={redis_url}"
            args.append(arg)
        cert, key = issue_certificate(tmp_path, HOST, f"DNS:{HOST}", private_ca)
        args += ["--https-address=127.0.0.1:443", f"--tls-cert-file={cert}", f"--tls-key-file={key}"]
        env = {"OAUTH2_PROXY_CLIENT_SECRET": secret["client-secret"], "OAUTH2_PROXY_COOKIE_SECRET": secret["cookie-secret"],
               "OAUTH2_PROXY_REDIS_PASSWORD": redis["password"]}
        programs.append(start([str(toolchain_bin / "oauth2-proxy"), *args], tmp_path / "oauth2-proxy.log", env))
        browser = Browser(private_ca[0], 443)
        # With a TLS certificate oauth2-proxy serves HTTPS only: ask its readiness there.
        wait_until("oauth2-proxy", lambda: browser.get(f"https://{HOST}/ready")[0] == 200, tmp_path / "oauth2-proxy.log")
        # Without a session: off to Dex, for this client, with the exact callback.
        status, location, _ = browser.get(f"https://{HOST}/", follow=False)
        assert status == 302 and location.startswith(f"{issuer}/auth?"), (status, location)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
        assert query["client_id"] == ["langflow"] and query["redirect_uri"] == [f"https://{HOST}/oauth2/callback"]
        assert query["code_challenge_method"] == ["S256"]

        # Dex finds the client (else: "Unregistered redirect_uri" / invalid client) and shows its login form.
        status, url, body = sign_in(browser, f"https://{HOST}/", USER)
        assert status == 200 and body == f"upstream says hello to {USER}", (status, url, body[:500])
        assert url == f"https://{HOST}/"

        # Signed in, the session carries on, in Redis; a copy of the cookie works elsewhere too.
        assert browser.get(f"https://{HOST}/")[2] == f"upstream says hello to {USER}"
        assert redis_keys(redis_port, redis["password"]) == 1
        cookie, thief = copied_cookie(browser), Browser(private_ca[0], 443)
        assert thief.get(f"https://{HOST}/", headers={"Cookie": cookie})[2] == f"upstream says hello to {USER}"
        # Signing out ends it: in the browser, and for the copy (the session itself is gone from Redis).
        browser.get(f"https://{HOST}/oauth2/sign_out", follow=False)
        status, location, _ = browser.get(f"https://{HOST}/", follow=False)
        assert status == 302 and location.startswith(f"{issuer}/auth?"), (status, location)
        assert redis_keys(redis_port, redis["password"]) == 0
        status, location, body = thief.get(f"https://{HOST}/", follow=False, headers={"Cookie": cookie})
        assert status == 302 and location.startswith(f"{issuer}/auth?"), (status, location, body[:300])
    finally:
        upstream.shutdown()


# --- per-user identity: each person Dex signs in is their own Langflow user -----------------------------

ALICE, BOB = "alice@example.test", "bob@example.test"
# Short enough for the test to see a token expire; Dex's default is 24 h (sso.dex.id_token_expiry_minutes).
ID_TOKEN_SECONDS = 45


def dex_config(issuer: str, listen: dict, clients: list[dict], tmp_path: Path) -> Path:
    """Dex with two static users, in memory; `passwordConnector` lets the test ask for tokens directly."""
    path = tmp_path / f"dex-{urllib.parse.urlsplit(issuer).port}.yaml"
    path.write_text(yaml.safe_dump({
        "issuer": issuer, "storage": {"type": "memory"}, "web": listen,
        "enablePasswordDB": True,
        "staticPasswords": [
            {"email": ALICE, "hash": PASSWORD_HASH, "username": "alice", "userID": "7d3a1f52-57c5-4a44-9a0a-1c2c2f0c0a01"},
            {"email": BOB, "hash": PASSWORD_HASH, "username": "bob", "userID": "7d3a1f52-57c5-4a44-9a0a-1c2c2f0c0a02"}],
        "staticClients": clients,
        "oauth2": {"skipApprovalScreen": True, "passwordConnector": "local"},
        "expiry": {"idTokens": f"{ID_TOKEN_SECONDS}s"},
    }))
    return path


def password_grant(issuer: str, client_id: str, client_secret: str, user: str, context: ssl.SSLContext) -> str:
    """An ID token straight from Dex's token endpoint (its password grant), as oauth2-proxy would pass it on."""
    body = urllib.parse.urlencode({"grant_type": "password", "username": user, "password": PASSWORD,
                                   "scope": "openid email profile"}).encode()
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    request = urllib.request.Request(f"{issuer}/token", data=body, headers={"Authorization": f"Basic {basic}"})
    with urllib.request.urlopen(request, timeout=30, context=context) as answer:
        return json.loads(answer.read())["id_token"]


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def tampered(token: str, **claims) -> str:
    """The same signed token with other claims: its signature no longer matches."""
    header, _, signature = token.split(".")
    forged = base64.urlsafe_b64encode(json.dumps({**claims_of(token), **claims}).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


def expiry(token: str) -> float:
    return claims_of(token)["exp"]


# Where the screenshot of the signed-in UI is kept (the run's temporary folders are removed).
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR") or Path(__file__).resolve().parents[2] / "test-artifacts")


def signed_in_ui(url: str, user: str, expected_flow: str, tmp_path: Path) -> None:
    """Debian's headless Chromium (and its chromedriver: nothing is downloaded) opens `url`, is sent to Dex,
    signs in as `user`, and reaches Langflow's UI signed in as `user`; a screenshot is kept in ARTIFACTS."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # The private CA is not in Chromium's store: the other clients of this test check the chain.
    driver = headless_chromium(tmp_path, f"--host-resolver-rules=MAP {HOST} 127.0.0.1", "--ignore-certificate-errors")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        driver.set_page_load_timeout(60)
        driver.get(url)
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.find_elements(By.NAME, "password"))
        assert "/dex/auth" in driver.current_url, driver.current_url
        driver.find_element(By.NAME, "login").send_keys(user)
        driver.find_element(By.NAME, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(lambda d: d.current_url.startswith(f"https://{HOST}/") and "/oauth2/" not in d.current_url)
        # Langflow's UI, past its own login page, listing the user's own flows (`expected_flow`).
        wait.until(lambda d: expected_flow in d.find_element(By.TAG_NAME, "body").text)
        driver.save_screenshot(str(ARTIFACTS / "sso-per-user-signed-in.png"))
        assert "/login" not in driver.current_url and not driver.find_elements(By.CSS_SELECTOR, "input[type=password]")
        # Who the page is signed in as, asked from the page (the UI wraps fetch: a plain request instead).
        shown = driver.execute_async_script(
            "const done = arguments[arguments.length - 1], request = new XMLHttpRequest();"
            "request.open('GET', '/api/v1/users/whoami'); request.onload = () => done(request.responseText);"
            "request.onerror = () => done('no answer'); request.send();")
        assert json.loads(shown)["username"] == user, shown
    except Exception:
        driver.save_screenshot(str(ARTIFACTS / "sso-per-user-failed.png"))
        (ARTIFACTS / "sso-per-user-failed.html").write_text(driver.page_source)
        raise
    finally:
        driver.quit()


@pytest.mark.langflow
def test_each_person_is_their_own_langflow_user(toolchain_bin, tmp_path, private_ca, programs):
    """Real Dex (https, signed by a private CA), oauth2-proxy with exactly the generated flags, and Langflow
    1.13.0 with exactly the generated env: the per-user identity of sso.identity, end to end."""
    import certifi

    from components.edge import spec as edge_spec
    from settings import load_settings
    from verify.install import ensure_langflow
    from verify.process import LangflowProcess
    from verify.render import generated_credentials, render

    # oauth2-proxy serves the ingress host on 443: the browser resolves the host to 127.0.0.1, keeping the port.
    dex_port, other_dex_port, proxy_port, proxy_http_port = free_port(), free_port(), 443, free_port()
    issuer, other_issuer = f"https://127.0.0.1:{dex_port}/dex", f"http://127.0.0.1:{other_dex_port}/dex"
    ca_cert, _ = private_ca
    # What trusted_ca's ConfigMap holds: the public CAs and the platform's (Langflow trusts nothing else).
    bundle = Path(certifi.where()).read_text() + "\n" + ca_cert.read_text()
    settings = load_settings({
        "image": {"repository": "langflowai/langflow", "tag": "1.13.0"},
        "auth": {"enabled": True},
        "ingress": {"enabled": True, "hosts": [{"host": HOST}], "tls": {"mode": "secret", "secret_name": "langflow-tls"}},
        "sso": {"enabled": True, "issuer_url": issuer, "client_id": "langflow", "oauth2_proxy": {"replicas": 1}},
        "trusted_ca": {"config_map": "platform-ca"},
        "flows": {"source": "none"},
    }, tmp_path)
    config = settings.config
    credentials = generated_credentials(True)
    container = render(settings, credentials)
    # Unset, the mode is per-user: 1.13.0 with login on.
    assert container.env["LANGFLOW_EXTERNAL_AUTH_ENABLED"] == "true"
    assert container.env["LANGFLOW_EXTERNAL_AUTH_TRUSTED_JWT_DECODE"] == "false"
    (trust,) = [v for v in container.volumes if v.name == "trusted-ca"]
    trust.files = {"ca.crt": bundle}

    # Dex, serving https with a certificate of the private CA; the client exactly as the program registers it.
    client_secret = "client-secret-of-the-test"
    registered = edge_spec.oauth2_client_object(config.sso, config.ingress, client_secret)
    client = {key: registered[key] for key in ("id", "name", "secret", "redirectURIs")}
    other_app = {"id": "other-app", "name": "Other", "secret": "other-secret", "redirectURIs": ["https://other.test/cb"]}
    dex_cert, dex_key = issue_certificate(tmp_path, "dex", "IP:127.0.0.1", private_ca)
    listen = {"https": f"127.0.0.1:{dex_port}", "tlsCert": str(dex_cert), "tlsKey": str(dex_key)}
    programs.append(start([str(toolchain_bin / "dex"), "serve", str(dex_config(issuer, listen, [client, other_app],
                                                                            tmp_path))], tmp_path / "dex.log"))
    # Another issuer with the same client id: its tokens name the right audience, and are still not Dex's.
    programs.append(start([str(toolchain_bin / "dex"), "serve", str(dex_config(
        other_issuer, {"http": f"127.0.0.1:{other_dex_port}"}, [client], tmp_path))], tmp_path / "other-dex.log"))
    trusting = ssl.create_default_context(cafile=str(ca_cert))
    wait_until("Dex", lambda: urllib.request.urlopen(f"{issuer}/keys", timeout=2, context=trusting).status == 200,
               tmp_path / "dex.log")
    wait_until("the other Dex", lambda: urllib.request.urlopen(f"{other_issuer}/keys", timeout=2).status == 200,
               tmp_path / "other-dex.log")
    # Minted now, long expired by the end of the test: a token Langflow must refuse for its age alone.
    expired = password_grant(issuer, "langflow", client_secret, ALICE, trusting)

    # Langflow 1.13.0 as the pod runs it (the sandbox of make verify), the CA bundle in its volume.
    langflow = LangflowProcess(ensure_langflow("1.13.0", log=print), container, tmp_path)
    try:
        langflow.start()
        langflow.wait_ready(container.startup_budget_seconds)

        # oauth2-proxy with the flags the program generates; only addresses and the CA's folder are this host's.
        proxy_cert, proxy_key = issue_certificate(tmp_path, HOST, f"DNS:{HOST}", private_ca)
        (tmp_path / "trusted-ca").mkdir()
        (tmp_path / "trusted-ca" / "ca.crt").write_text(bundle)
        redis_password = "redis-password-of-the-test"
        _, redis_url = session_store(tmp_path, programs, edge_spec.redis_config_file(redis_password), redis_password)
        args = []
        for arg in edge_spec.oauth2_proxy_args(config.sso, config.ingress, "http://langflow:7860/", per_user=True,
                                                trusted_ca=config.trusted_ca, redis_url=redis_url):
            if arg.startswith("--upstream="):
                arg = f"--upstream={langflow.base_url}/"
            elif arg.startswith("--http-address="):
                arg = f"--http-address=127.0.0.1:{proxy_http_port}"
            arg = arg.replace(edge_spec.OAUTH2_PROXY_CA_DIR, str(tmp_path / "trusted-ca"))
            args.append(arg)
        assert "--pass-authorization-header=true" in args
        args += [f"--https-address=127.0.0.1:{proxy_port}", f"--tls-cert-file={proxy_cert}", f"--tls-key-file={proxy_key}"]
        env = {"OAUTH2_PROXY_CLIENT_SECRET": client_secret, "OAUTH2_PROXY_COOKIE_SECRET": base64.urlsafe_b64encode(
            b"0" * 32).decode(), "OAUTH2_PROXY_REDIS_PASSWORD": redis_password}
        programs.append(start([str(toolchain_bin / "oauth2-proxy"), *args], tmp_path / "oauth2-proxy.log", env))
        alice, bob = Browser(ca_cert, proxy_port), Browser(ca_cert, proxy_port)
        wait_until("oauth2-proxy", lambda: alice.get(f"https://{HOST}/ready")[0] == 200, tmp_path / "oauth2-proxy.log")
        whoami = f"https://{HOST}/api/v1/users/whoami"
        as_json = {"Content-Type": "application/json"}

        # Alice signs in through Dex and is herself in Langflow, not the superuser.
        status, url, body = sign_in(alice, whoami, ALICE)
        assert status == 200 and url == whoami, (status, url, body[:500], langflow.log_tail())
        alice_user = json.loads(body)
        assert alice_user["username"] == ALICE and alice_user["is_superuser"] is False, alice_user
        signed_in_at = time.time()
        # Her flow is hers.
        flow = json.dumps({"name": "alice's flow", "data": {"nodes": [], "edges": []}}).encode()
        status, _, body = alice.get(f"https://{HOST}/api/v1/flows/", data=flow, headers=as_json)
        assert status == 201, (status, body[:500])
        names = lambda browser: {f["name"] for f in json.loads(browser.get(f"https://{HOST}/api/v1/flows/")[2])}  # noqa: E731
        assert "alice's flow" in names(alice)
        # sso.identity.api_keys is off: she cannot mint a key that would outlive her sign-in.
        status, _, body = alice.get(f"https://{HOST}/api/v1/api_key/", data=b'{"name": "mine"}', headers=as_json)
        assert status == 403, (status, body[:300])

        # Bob is another user, and does not see Alice's flow.
        status, _, body = sign_in(bob, whoami, BOB)
        bob_user = json.loads(body)
        assert status == 200 and bob_user["username"] == BOB and bob_user["id"] != alice_user["id"], body[:500]
        assert "alice's flow" not in names(bob)

        # Straight at Langflow: a fresh token of Dex for this client is accepted (so the refusals below are
        # about the token alone); another audience, another issuer, a tampered or an expired token are not.
        def whoami_with(token: str) -> int:
            return langflow.request("/api/v1/users/whoami", headers={"Authorization": f"Bearer {token}"})[0]

        valid = password_grant(issuer, "langflow", client_secret, ALICE, trusting)
        assert whoami_with(valid) == 200
        assert whoami_with(password_grant(issuer, "other-app", "other-secret", ALICE, trusting)) == 401
        assert whoami_with(password_grant(other_issuer, "langflow", client_secret, ALICE, trusting)) == 401
        assert whoami_with(tampered(valid, email=BOB)) == 401

        # The superuser is a break-glass account: its password (the Secret's) works straight at Langflow.
        status, token = langflow.login(config.auth.superuser, credentials["LANGFLOW_SUPERUSER_PASSWORD"])
        assert status == 200, token
        status, admin = langflow.request("/api/v1/users/whoami",
                                         headers={"Authorization": f"Bearer {token['access_token']}"})
        assert status == 200 and admin["is_superuser"] is True, admin

        # Signing out of oauth2-proxy ends access to Langflow too: back to Dex, nothing reaches Langflow.
        bob.get(f"https://{HOST}/oauth2/sign_out", follow=False)
        status, location, _ = bob.get(whoami, follow=False)
        assert status == 302 and location.startswith(f"{issuer}/auth?"), (status, location)
        # In a real browser (while Alice's token ages): Dex's page, then Langflow's UI, as Alice.
        signed_in_ui(f"https://{HOST}/", ALICE, "alice's flow", tmp_path)
        # Once Dex's token has expired, Langflow refuses it even through the session oauth2-proxy still
        # holds (here Dex's tokens last 45 s, the cookie the configured 24 h): Langflow keeps none of its own.
        time.sleep(max(0.0, signed_in_at + ID_TOKEN_SECONDS + 1 - time.time()))
        status, _, body = alice.get(whoami)
        assert status == 401, (status, body[:300])
        # Straight at Langflow too: the token minted before Langflow started is past its `exp` now.
        assert time.time() > expiry(expired) and whoami_with(expired) == 401
    finally:
        langflow.cleanup()


# --- signing out, the API paths, forwarded headers ------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def proxy_args(config, upstream: str, http_port: int, redis_url: str, **options) -> list[str]:
    """oauth2-proxy's flags as the program generates them; only the addresses are this host's."""
    from components.edge import spec as edge_spec

    args = []
    for arg in edge_spec.oauth2_proxy_args(config.sso, config.ingress, "http://langflow:7860/", redis_url=redis_url,
                                           **options):
        if arg.startswith("--upstream="):
            arg = f"--upstream={upstream}"
        elif arg.startswith("--http-address="):
            arg = f"--http-address=127.0.0.1:{http_port}"
        args.append(arg)
    return args


@pytest.mark.langflow
def test_signing_out_ends_the_session_and_api_paths_take_only_an_api_key(toolchain_bin, tmp_path, private_ca, programs):
    """Real Dex, oauth2-proxy with the generated flags and its Redis, and Langflow 1.13.0 (per-user) serving the
    repository's echo flow: a copied cookie reaches Langflow until the person signs out, and never after; on
    /api/v1/run/ an API key works and a person's own Dex token does not."""
    from components.edge import spec as edge_spec
    from settings import load_settings
    from verify.install import ensure_langflow
    from verify.process import LangflowProcess
    from verify.render import generated_credentials, render

    dex_port, proxy_http_port = free_port(), free_port()
    issuer = f"http://127.0.0.1:{dex_port}/dex"
    settings = load_settings({
        "image": {"repository": "langflowai/langflow", "tag": "1.13.0"},
        "auth": {"enabled": True},
        "ingress": {"enabled": True, "hosts": [{"host": HOST}], "tls": {"mode": "secret", "secret_name": "langflow-tls"}},
        "sso": {"enabled": True, "issuer_url": issuer, "client_id": "langflow", "oauth2_proxy": {"replicas": 1},
                "api_paths": ["/api/v1/run/"]},
        "flows": {"source": "folder", "folder": "flows", "update": "restart"},
    }, REPO)
    config = settings.config
    assert config.sso.oauth2_proxy.session_store == "redis"
    assert "--skip-auth-route=^/api/v1/run/" in edge_spec.oauth2_proxy_args(config.sso, config.ingress, "http://x/",
                                                                           redis_url="redis://r:6379")
    credentials = generated_credentials(True)
    container = render(settings, credentials)
    assert container.env["LANGFLOW_EXTERNAL_AUTH_ENABLED"] == "true"  # per-user: Langflow takes Dex's tokens

    client_secret = "client-secret-of-the-test"
    registered = edge_spec.oauth2_client_object(config.sso, config.ingress, client_secret)
    client = {key: registered[key] for key in ("id", "name", "secret", "redirectURIs")}
    programs.append(start([str(toolchain_bin / "dex"), "serve", str(dex_config(
        issuer, {"http": f"127.0.0.1:{dex_port}"}, [client], tmp_path))], tmp_path / "dex.log"))
    wait_until("Dex", lambda: urllib.request.urlopen(f"{issuer}/keys", timeout=2).status == 200, tmp_path / "dex.log")
    redis_password = "redis-password-of-the-test"
    redis_port, redis_url = session_store(tmp_path, programs, edge_spec.redis_config_file(redis_password),
                                          redis_password)

    langflow = LangflowProcess(ensure_langflow("1.13.0", log=print), container, tmp_path)
    try:
        langflow.start()
        langflow.wait_ready(container.startup_budget_seconds)
        proxy_cert, proxy_key = issue_certificate(tmp_path, HOST, f"DNS:{HOST}", private_ca)
        args = proxy_args(config, f"{langflow.base_url}/", proxy_http_port, redis_url, per_user=True)
        args += ["--https-address=127.0.0.1:443", f"--tls-cert-file={proxy_cert}", f"--tls-key-file={proxy_key}"]
        env = {"OAUTH2_PROXY_CLIENT_SECRET": client_secret, "OAUTH2_PROXY_REDIS_PASSWORD": redis_password,
               "OAUTH2_PROXY_COOKIE_SECRET": base64.urlsafe_b64encode(b"1" * 32).decode()}
        programs.append(start([str(toolchain_bin / "oauth2-proxy"), *args], tmp_path / "oauth2-proxy.log", env))
        ca_cert = private_ca[0]
        alice, thief, api = Browser(ca_cert, 443), Browser(ca_cert, 443), Browser(ca_cert, 443)
        wait_until("oauth2-proxy", lambda: alice.get(f"https://{HOST}/ready")[0] == 200, tmp_path / "oauth2-proxy.log")
        whoami = f"https://{HOST}/api/v1/users/whoami"

        # Alice signs in; the session is in Redis, and a copy of her cookie is Alice to Langflow too.
        status, _, body = sign_in(alice, whoami, ALICE)
        assert status == 200 and json.loads(body)["username"] == ALICE, (status, body[:300], langflow.log_tail())
        assert redis_keys(redis_port, redis_password) == 1
        cookie = copied_cookie(alice)
        status, _, body = thief.get(whoami, headers={"Cookie": cookie})
        assert status == 200 and json.loads(body)["username"] == ALICE, (status, body[:300])

        # She signs out: the session is deleted, and the copy no longer reaches Langflow (back to Dex).
        alice.get(f"https://{HOST}/oauth2/sign_out", follow=False)
        assert redis_keys(redis_port, redis_password) == 0
        status, location, body = thief.get(whoami, follow=False, headers={"Cookie": cookie})
        assert status == 302 and location.startswith(f"{issuer}/auth?"), (status, location, body[:300])
        status, location, _ = thief.get(whoami, follow=False, headers={"Cookie": cookie, "Accept": "application/json"})
        assert status in (302, 401) and status != 200

        # The API paths: the superuser's API key (made straight at Langflow) runs the echo flow through the edge.
        status, token = langflow.login(config.auth.superuser, credentials["LANGFLOW_SUPERUSER_PASSWORD"])
        assert status == 200, token
        status, key = langflow.create_api_key(token["access_token"], "edge-test")
        assert status in (200, 201), key
        run = f"https://{HOST}/api/v1/run/echo?stream=false"
        as_json = {"Content-Type": "application/json"}
        payload = json.dumps({"input_value": "ping through the edge", "input_type": "chat",
                              "output_type": "chat"}).encode()
        status, url, body = api.get(run, data=payload, follow=False, headers={**as_json, "x-api-key": key["api_key"]})
        assert status == 200 and "ping through the edge" in body, (status, url, body[:300], langflow.log_tail())
        # Without a key: Langflow's own refusal, not a sign-in (oauth2-proxy let the path through).
        status, url, body = api.get(run, data=payload, follow=False, headers=as_json)
        assert status in (401, 403) and url == run, (status, url, body[:300])
        # A person's own Dex ID token. Langflow 1.13 takes only keys on /api/v1/run/<flow> (api_key_security: 403
        # "An API key must be passed"), but inside the same prefix /api/v1/run/session/<flow> takes the signed-in
        # user (get_current_user: the Bearer token): straight at Langflow the token authenticates there (the echo
        # flow is the superuser's, so Alice gets 404, not 401/403) ...
        dex_token = password_grant(issuer, "langflow", client_secret, ALICE, ssl.create_default_context())
        bearer = {**as_json, "Authorization": f"Bearer {dex_token}"}
        status, body = langflow.request("/api/v1/run/echo?stream=false", "POST", payload, bearer, timeout=120)
        assert status == 403, (status, str(body)[:300])
        session_run = "/api/v1/run/session/echo?stream=false"
        status, body = langflow.request(session_run, "POST", payload, bearer, timeout=120)
        assert status not in (401, 403), (status, str(body)[:300])
        status, body = langflow.request(session_run, "POST", payload, as_json, timeout=120)
        assert status in (401, 403), (status, str(body)[:300])
        # ... but through the edge it is stripped: refused as if no credential came.
        status, url, body = api.get(f"https://{HOST}{session_run}", data=payload, follow=False, headers=bearer)
        assert status in (401, 403) and url == f"https://{HOST}{session_run}", (status, url, body[:300])
        # A protected path cannot pass for an API path with a forged X-Forwarded-Uri: off to Dex.
        status, location, body = api.get(f"https://{HOST}/api/v1/flows/", follow=False,
                                         headers={"X-Forwarded-Uri": "/api/v1/run/echo"})
        assert status == 302 and location.startswith(f"{issuer}/auth?"), (status, location, body[:300])
    finally:
        langflow.cleanup()


FORGED = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http", "X-Forwarded-For": "203.0.113.9",
          "X-Real-IP": "203.0.113.9", "X-Forwarded-Uri": "/api/v1/run/forged"}


def forged_request(port: int, path: str) -> tuple[int, str]:
    """A request from 127.0.0.1 that claims, in X-Forwarded-* headers, another client, host, scheme and path."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers={"Host": HOST, **FORGED})
        answer = connection.getresponse()
        answer.read()
        return answer.status, answer.getheader("Location") or ""
    finally:
        connection.close()


def logged(log: Path, path: str) -> list[str]:
    """oauth2-proxy's request log lines for `path` (client first, then the request id, user, time, host)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        # The path is logged quoted: `GET - "/projects/one" HTTP/1.1`.
        lines = [line for line in log.read_text().splitlines() if f'"{path}"' in line]
        if lines:
            return lines
        time.sleep(0.2)
    pytest.fail(f"no log line for {path}:\n{log.read_text()[-2000:]}")


def test_forged_forwarded_headers_change_nothing(toolchain_bin, tmp_path, programs):
    """oauth2-proxy with the generated flags believes no X-Forwarded-* header: a forged host, scheme, client
    address or path changes neither the redirect, nor what it logs, nor which paths skip the sign-in. With
    `trusted_proxy_cidrs` it believes them from those addresses alone."""
    from components.edge import spec as edge_spec
    from settings.loader import parse_config

    dex_port = free_port()
    issuer = f"http://127.0.0.1:{dex_port}/dex"
    ingress = {"enabled": True, "hosts": [{"host": HOST}], "tls": {"mode": "secret", "secret_name": "langflow-tls"}}
    sso = {"enabled": True, "issuer_url": issuer, "client_id": "langflow", "api_paths": ["/api/v1/run/"]}
    default = parse_config({"ingress": ingress, "sso": sso, "auth": {"enabled": True}})
    client = {key: value for key, value in edge_spec.oauth2_client_object(default.sso, default.ingress, "s").items()
              if key in ("id", "name", "secret", "redirectURIs")}
    programs.append(start([str(toolchain_bin / "dex"), "serve", str(dex_config(
        issuer, {"http": f"127.0.0.1:{dex_port}"}, [client], tmp_path))], tmp_path / "dex.log"))
    wait_until("Dex", lambda: urllib.request.urlopen(f"{issuer}/keys", timeout=2).status == 200, tmp_path / "dex.log")
    _, redis_url = session_store(tmp_path, programs, edge_spec.redis_config_file("p"), "p")
    env = {"OAUTH2_PROXY_CLIENT_SECRET": "s", "OAUTH2_PROXY_REDIS_PASSWORD": "p",
           "OAUTH2_PROXY_COOKIE_SECRET": base64.urlsafe_b64encode(b"2" * 32).decode()}

    def proxy(name: str, config) -> tuple[int, Path]:
        port, log = free_port(), tmp_path / f"oauth2-proxy-{name}.log"
        upstream = f"http://127.0.0.1:{free_port()}/"  # never reached: nothing here signs in
        programs.append(start([str(toolchain_bin / "oauth2-proxy"), *proxy_args(config, upstream, port, redis_url)],
                              log, env))
        wait_until(f"oauth2-proxy ({name})", lambda: forged_request(port, "/ping")[0] == 200, log)
        return port, log

    # The generated flags: no --reverse-proxy, so oauth2-proxy does not warn that it trusts everyone.
    port, log = proxy("default", default)
    assert "--reverse-proxy is enabled but no --trusted-proxy-ip" not in log.read_text()
    status, location = forged_request(port, "/projects/one")
    assert status == 302 and location.startswith(f"{issuer}/auth?"), (status, location)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert query["redirect_uri"] == [f"https://{HOST}/oauth2/callback"]
    assert "evil.example" not in urllib.parse.unquote(location)
    (line,) = logged(log, "/projects/one")
    # The direct peer (its address and port), the request's own Host.
    assert line.startswith("127.0.0.1:") and f" {HOST} " in line, line
    assert "203.0.113.9" not in line and "evil.example" not in line, line
    # The forged X-Forwarded-Uri names an API path: the real path still needs the sign-in.
    assert forged_request(port, "/api/v1/flows/")[0] == 302

    # Declared proxies: their headers are believed (the client address in the log), and nobody else's.
    trusting = parse_config({"ingress": ingress, "auth": {"enabled": True},
                             "sso": {**sso, "api_paths": [], "oauth2_proxy": {"trusted_proxy_cidrs": ["127.0.0.1/32"]}}})
    port, log = proxy("trusting", trusting)
    forged_request(port, "/projects/two")
    (line,) = logged(log, "/projects/two")
    assert line.startswith("203.0.113.9 "), line
    elsewhere = parse_config({"ingress": ingress, "auth": {"enabled": True},
                              "sso": {**sso, "api_paths": [], "oauth2_proxy": {"trusted_proxy_cidrs": ["10.0.0.0/8"]}}})
    port, log = proxy("elsewhere", elsewhere)
    status, location = forged_request(port, "/projects/three")
    assert status == 302 and "evil.example" not in urllib.parse.unquote(location)
    (line,) = logged(log, "/projects/three")
    # The direct peer (with --reverse-proxy oauth2-proxy logs it without its port), never the forged client.
    assert line.startswith(("127.0.0.1:", "127.0.0.1 ")) and "203.0.113.9" not in line and "evil.example" not in line, line
