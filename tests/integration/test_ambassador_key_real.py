"""The ambassador's key Job on a real API server: its Secret store, with the RBAC the program renders.

The ServiceAccount, Role, RoleBinding and key Secret come from the prod program under mocks (what
`pulumi up` would create), created for real on the local cluster; the script's SecretStore then works with
a token of that ServiceAccount, as the Job's pod has it: it reads and patches its Secret, and nothing else.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flowsync.api_key import SecretStore, ensure_key
from flowsync.sync import SyncError
from tests.integration.test_dry_run import collection, manifest
from tests.program import run_program, stack_values
from tests.test_api_key import StandInLangflow

pytestmark = pytest.mark.integration
NAMESPACE, SECRET, ACCOUNT = "langflow", "langflow-ambassador-key", "langflow-ambassador-key"
KINDS = ("ServiceAccount", "Role", "RoleBinding", "Secret")


def test_the_key_job_reads_and_patches_its_secret_and_nothing_else(local_cluster, tmp_path: Path):
    cluster = local_cluster()
    api = cluster.client()
    run = run_program(stack_values("prod"), "prod")
    assert run.error is None, run.error
    objects = [manifest(r) for r in run.resources if r.type.split(":")[-1] in KINDS and "ambassador-key" in r.name]
    assert sorted(o["kind"] for o in objects) == sorted(KINDS)
    api.ensure("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    for obj in objects:
        api.create(collection(obj), obj)
    api.create(f"/api/v1/namespaces/{NAMESPACE}/secrets", {"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "langflow-credentials"}, "stringData": {"LANGFLOW_SECRET_KEY": "x"}})
    # The token the Job's pod gets (projected service-account token), and the cluster's CA.
    token = api.create(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{ACCOUNT}/token",
                       {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(token["status"]["token"])
    (account / "ca.crt").write_bytes(Path(cluster.ca_file).read_bytes())

    store = SecretStore(NAMESPACE, SECRET, api=cluster.server, account=account)
    assert store.read() is None  # created empty: the Job fills it
    langflow = StandInLangflow()
    try:
        assert ensure_key(langflow.url, [store], lambda _: None) is True
        assert store.read() == "sk-made-1"
        assert ensure_key(langflow.url, [store], lambda _: None) is False  # kept: the same Job again changes nothing
    finally:
        langflow.close()
    # Anything else is refused by the API server: the credentials Secret, and listing Secrets.
    other = SecretStore(NAMESPACE, "langflow-credentials", api=cluster.server, account=account)
    for attempt in (other.read, lambda: other.write("sk-stolen")):
        with pytest.raises(SyncError, match="HTTP 403"):
            attempt()
    assert api.get(f"/api/v1/namespaces/{NAMESPACE}/secrets/langflow-credentials")["data"]["LANGFLOW_SECRET_KEY"] == "eA=="
