"""The ambassador's Langflow API key, on Langflow before 1.7 (which cannot take one from its environment).

Run once per revision by a Job of the stack's own Langflow image: signs in as the superuser (or through
auto-login with login off), and keeps the key the Secret holds when Langflow still accepts it; otherwise
asks Langflow for a new key (`POST /api/v1/api_key/`, Langflow makes the value) and writes it into each
Secret named, through the Kubernetes API, with the Job's own service account (allowed to read and patch
those Secrets and the ambassador's Deployment only). The key is never printed. Standard library only;
`sync.py` lies beside it.

The ambassador's pods read the key once, at start: with `--deployment`, the shared ambassador's Deployment
gets the key's digest on its pod template whenever it carries another (as `kubectl rollout restart` does),
so Kubernetes replaces its pods (maxUnavailable 0) and they start with the Secret's new key.

Exit status: 0 the key works and is stored, 1 a failure (the message says where).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional, Protocol, Sequence

try:  # as the Job runs it (python api_key.py, sync.py beside it), or imported from the repo
    from sync import Langflow, SyncError, wait_ready
except ImportError:  # pragma: no cover - the repo's own import path
    from flowsync.sync import Langflow, SyncError, wait_ready

SECRET_KEY = "LANGFLOW_API_KEY"
KEY_NAME = "langflow-ambassador"
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
KUBERNETES_API = "https://kubernetes.default.svc"
# The Job's own annotation on the ambassador's pod template (Pulumi sets another on 1.7+: components/ambassador/spec.py
# takes this one and key_digest from here).
KEY_DIGEST_ANNOTATION = "langflow.org/ambassador-key-job-sha256"


def key_digest(key: str) -> str:
    """What the pod template carries of the key: a SHA-256 of a random 256-bit key tells nothing of it."""
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore(Protocol):
    where: str

    def read(self) -> Optional[str]: ...

    def write(self, key: str) -> None: ...


class KubernetesObject:
    """One object, through the Kubernetes API, with the pod's service account token."""

    def __init__(self, where: str, path: str, api: str = KUBERNETES_API, account: Path = SERVICE_ACCOUNT):
        self.where, self.path = where, path
        self.api, self.token = api, (account / "token").read_text().strip()
        self.context = ssl.create_default_context(cafile=str(account / "ca.crt"))

    def _call(self, method: str, body: Optional[dict] = None, *, missing_ok: bool = False) -> Optional[dict]:
        request = urllib.request.Request(
            self.api + self.path, method=method, data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json",
                     "Content-Type": "application/merge-patch+json"})
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.context) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            if missing_ok and error.code == 404:
                return None
            raise SyncError(f"{method} {self.where}: HTTP {error.code}: {error.read()[:300]!r}") from None
        except (urllib.error.URLError, OSError) as error:
            raise SyncError(f"{method} {self.where}: the Kubernetes API did not answer: {error}") from None


class SecretStore(KubernetesObject):
    """One Secret that holds the key."""

    def __init__(self, namespace: str, name: str, api: str = KUBERNETES_API, account: Path = SERVICE_ACCOUNT):
        super().__init__(f"Secret {namespace}/{name}", f"/api/v1/namespaces/{namespace}/secrets/{name}", api, account)

    def read(self) -> Optional[str]:
        value = ((self._call("GET") or {}).get("data") or {}).get(SECRET_KEY)
        return base64.b64decode(value).decode() if value else None

    def write(self, key: str) -> None:
        self._call("PATCH", {"data": {SECRET_KEY: base64.b64encode(key.encode()).decode()}})


class AmbassadorDeployment(KubernetesObject):
    """The shared ambassador's Deployment, whose pods read the key once, at start."""

    def __init__(self, namespace: str, name: str, api: str = KUBERNETES_API, account: Path = SERVICE_ACCOUNT):
        super().__init__(f"Deployment {namespace}/{name}", f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
                         api, account)

    def roll_to(self, key: str) -> Optional[bool]:
        """The key's digest on the pod template: True when it changed it (the pods roll), False when it was
        there already, None when there is no Deployment yet (its pods will read the key at start)."""
        deployment = self._call("GET", missing_ok=True)
        if deployment is None:
            return None
        digest = key_digest(key)
        template = (deployment.get("spec") or {}).get("template") or {}
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        if annotations.get(KEY_DIGEST_ANNOTATION) == digest:
            return False
        self._call("PATCH", {"spec": {"template": {"metadata": {"annotations": {KEY_DIGEST_ANNOTATION: digest}}}}})
        return True


class FileStore:
    """A file (mode 0600): the same steps by hand, or in tests."""

    def __init__(self, path: Path):
        self.where, self.path = str(path), path

    def read(self) -> Optional[str]:
        if not self.path.exists():
            return None
        return self.path.read_text().strip() or None

    def write(self, key: str) -> None:
        self.path.touch(mode=0o600)
        self.path.write_text(key)


def key_works(base_url: str, key: str) -> bool:
    """Langflow takes the key (as the run API would: the `x-api-key` header)."""
    try:
        return isinstance(Langflow(base_url, {"LANGFLOW_API_KEY": key}).request("GET", "/api/v1/users/whoami"), dict)
    except SyncError:
        return False


def ensure_key(base_url: str, stores: list[KeyStore], out=print,
               deployments: Sequence[AmbassadorDeployment] = ()) -> bool:
    """The first store's key, kept when it works, else a new one; every store then holds it, and each of
    `deployments` runs pods that started with it (rolled otherwise). True: created."""
    current = stores[0].read()
    created = not (current and key_works(base_url, current))
    if created:
        answer = Langflow(base_url).request("POST", "/api/v1/api_key/", {"name": KEY_NAME})
        current = (answer or {}).get("api_key")
        if not current or not key_works(base_url, current):
            raise SyncError("Langflow handed out an API key that it does not accept")
    for store in stores:
        if created or store.read() != current:
            store.write(current)
            out(f"api-key: stored in {store.where}")
    out("api-key: a new key was created" if created else "api-key: the stored key works: kept")
    # Also when the key was kept: a run that stored a new key and then failed here is finished by the next.
    for deployment in deployments:
        rolled = deployment.roll_to(current)
        out(f"api-key: {deployment.where}: " + {None: "not created yet (its pods will read the key at start)",
                                                True: "rolling its pods onto the key",
                                                False: "its pods have the key"}[rolled])
    return created


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="api_key", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="Langflow's base URL")
    parser.add_argument("--secret", action="append", default=[], metavar="NAMESPACE/NAME",
                        help="a Secret to hold the key (the first is the one read); repeatable")
    parser.add_argument("--file", type=Path, help="a file to hold the key instead (by hand, tests)")
    parser.add_argument("--deployment", action="append", default=[], metavar="NAMESPACE/NAME",
                        help="an ambassador Deployment to roll when its pods may hold another key; repeatable")
    parser.add_argument("--wait-seconds", type=float, default=0, help="wait this long for /health_check first")
    args = parser.parse_args(argv)
    try:
        stores: list[KeyStore] = [FileStore(args.file)] if args.file else [
            SecretStore(*item.split("/", 1)) for item in args.secret]
        if not stores:
            parser.error("give --secret NAMESPACE/NAME (or --file)")
        deployments = [AmbassadorDeployment(*item.split("/", 1)) for item in args.deployment]
        if args.wait_seconds:
            wait_ready(args.url, args.wait_seconds)
        ensure_key(args.url, stores, deployments=deployments)
    except (SyncError, OSError) as error:
        print(f"api-key: FAILED: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
