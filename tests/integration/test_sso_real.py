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
"""

from __future__ import annotations

import base64
import http.client
import http.cookiejar
import http.server
import json
import os
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

        # oauth2-proxy, exactly as deployed; only the addresses are this machine's.
        args = []
        for arg in container["args"]:
            if arg.startswith("--upstream="):
                arg = f"--upstream=http://127.0.0.1:{upstream_port}/"
            elif arg.startswith("--http-address="):
                arg = f"--http-address=127.0.0.1:{proxy_http_port}"
            args.append(arg)
        cert, key = issue_certificate(tmp_path, HOST, f"DNS:{HOST}", private_ca)
        args += ["--https-address=127.0.0.1:443", f"--tls-cert-file={cert}", f"--tls-key-file={key}"]
        env = {"OAUTH2_PROXY_CLIENT_SECRET": secret["client-secret"], "OAUTH2_PROXY_COOKIE_SECRET": secret["cookie-secret"]}
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

        # Signed in, the session carries on; signing out ends it.
        assert browser.get(f"https://{HOST}/")[2] == f"upstream says hello to {USER}"
        browser.get(f"https://{HOST}/oauth2/sign_out", follow=False)
        status, location, _ = browser.get(f"https://{HOST}/", follow=False)
        assert status == 302 and location.startswith(f"{issuer}/auth?"), (status, location)
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
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900",
                f"--host-resolver-rules=MAP {HOST} 127.0.0.1", f"--user-data-dir={tmp_path / 'chromium'}",
                # The private CA is not in Chromium's store: the other clients of this test check the chain.
                "--ignore-certificate-errors"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver", log_output=str(tmp_path / "chromedriver.log")),
                              options=options)
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
        args = []
        for arg in edge_spec.oauth2_proxy_args(config.sso, config.ingress, "http://langflow:7860/", per_user=True,
                                                trusted_ca=config.trusted_ca):
            if arg.startswith("--upstream="):
                arg = f"--upstream={langflow.base_url}/"
            elif arg.startswith("--http-address="):
                arg = f"--http-address=127.0.0.1:{proxy_http_port}"
            arg = arg.replace(edge_spec.OAUTH2_PROXY_CA_DIR, str(tmp_path / "trusted-ca"))
            args.append(arg)
        assert "--pass-authorization-header=true" in args
        args += [f"--https-address=127.0.0.1:{proxy_port}", f"--tls-cert-file={proxy_cert}", f"--tls-key-file={proxy_key}"]
        env = {"OAUTH2_PROXY_CLIENT_SECRET": client_secret, "OAUTH2_PROXY_COOKIE_SECRET": base64.urlsafe_b64encode(
            b"0" * 32).decode()}
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
        status, token = langflow.request("/api/v1/login", "POST", urllib.parse.urlencode(
            {"username": config.auth.superuser, "password": credentials["LANGFLOW_SUPERUSER_PASSWORD"]}).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"})
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
