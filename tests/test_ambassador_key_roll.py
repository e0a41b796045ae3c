"""The key Job (Langflow 1.6) rolls the shared ambassador onto a new key: its pods read the key once, at start.

flowsync/api_key.py against a stand-in Langflow (tests/test_api_key.py) and a stand-in Kubernetes API that
holds the key Secret and the ambassador's Deployment and applies merge patches, as the API server does.
"""

from __future__ import annotations

import base64
import copy
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from components.ambassador import spec
from flowsync import api_key
from flowsync.api_key import AmbassadorDeployment, SecretStore, ensure_key
from tests.test_api_key import StandInLangflow

SECRET = "/api/v1/namespaces/langflow/secrets/langflow-ambassador-key"
DEPLOYMENT = "/apis/apps/v1/namespaces/langflow/deployments/langflow-ambassador"


def merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386, as the API server applies application/merge-patch+json."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


class StandInKubernetes:
    """Objects by API path; records each write (method, path, body)."""

    def __init__(self, objects: dict[str, dict[str, Any]]):
        self.objects, self.writes = objects, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                found = outer.objects.get(self.path)
                self._answer(200, found) if found is not None else self._answer(404, {"reason": "NotFound"})

            def do_PATCH(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                assert self.headers["Content-Type"] == "application/merge-patch+json"
                if self.path not in outer.objects:
                    return self._answer(404, {"reason": "NotFound"})
                outer.writes.append(("PATCH", self.path, body))
                self._answer(200, merge(outer.objects[self.path], body))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def template_annotations(self) -> dict[str, str]:
        return self.objects[DEPLOYMENT]["spec"]["template"]["metadata"].get("annotations", {})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def account(tmp_path: Path) -> Path:
    """The pod's service account folder: a token and a CA bundle (unused over plain HTTP, but loaded)."""
    folder = tmp_path / "serviceaccount"
    folder.mkdir()
    (folder / "token").write_text("token-of-the-key-job")
    (folder / "ca.crt").write_text(Path(ssl.get_default_verify_paths().openssl_cafile).read_text())
    return folder


@pytest.fixture
def langflow() -> Iterator[StandInLangflow]:
    stand_in = StandInLangflow()
    yield stand_in
    stand_in.close()


def deployment(annotations: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": "langflow-ambassador"},
            "spec": {"replicas": 2, "template": {"metadata": {"annotations": dict(annotations)}, "spec": {}}}}


def test_a_new_key_rolls_the_shared_ambassador_and_a_kept_one_does_not(langflow, account: Path):
    config_digest = {spec.CONFIG_DIGEST_ANNOTATION: "abc"}
    cluster = StandInKubernetes({SECRET: {"metadata": {"name": "langflow-ambassador-key"}},
                                 DEPLOYMENT: deployment(config_digest)})
    try:
        store = SecretStore("langflow", "langflow-ambassador-key", api=cluster.url, account=account)
        ambassador = AmbassadorDeployment("langflow", "langflow-ambassador", api=cluster.url, account=account)
        lines: list[str] = []
        assert ensure_key(langflow.url, [store], lines.append, deployments=[ambassador]) is True
        assert cluster.template_annotations() == {**config_digest,
                                                  spec.KEY_JOB_DIGEST_ANNOTATION: spec.key_digest("sk-made-1")}
        assert lines[-1] == "api-key: Deployment langflow/langflow-ambassador: rolling its pods onto the key"
        # The same Job again, the key kept: the pods have it, nothing is written.
        writes = len(cluster.writes)
        assert ensure_key(langflow.url, [store], lines.append, deployments=[ambassador]) is False
        assert len(cluster.writes) == writes and lines[-1].endswith("its pods have the key")
        # Langflow no longer accepts the key: a new one, and the pods roll onto it.
        langflow.keys.clear()
        assert ensure_key(langflow.url, [store], lines.append, deployments=[ambassador]) is True
        assert store.read() == "sk-made-2"
        assert cluster.template_annotations()[spec.KEY_JOB_DIGEST_ANNOTATION] == spec.key_digest("sk-made-2")
        assert cluster.writes[-1] == ("PATCH", DEPLOYMENT, {"spec": {"template": {"metadata": {"annotations": {
            spec.KEY_JOB_DIGEST_ANNOTATION: spec.key_digest("sk-made-2")}}}}})
        assert not any("sk-" in line for line in lines)  # the key is never printed
    finally:
        cluster.close()


def test_a_run_that_stored_the_key_but_did_not_roll_is_finished_by_the_next(langflow, account: Path):
    """A key stored by an earlier run whose pods still hold another (that run failed before rolling them)."""
    cluster = StandInKubernetes({SECRET: {"data": {"LANGFLOW_API_KEY": base64.b64encode(b"sk-made-1").decode()}},
                                 DEPLOYMENT: deployment({spec.KEY_JOB_DIGEST_ANNOTATION: spec.key_digest("sk-old")})})
    langflow.keys.add("sk-made-1")
    try:
        store = SecretStore("langflow", "langflow-ambassador-key", api=cluster.url, account=account)
        ambassador = AmbassadorDeployment("langflow", "langflow-ambassador", api=cluster.url, account=account)
        assert ensure_key(langflow.url, [store], lambda _: None, deployments=[ambassador]) is False
        assert cluster.template_annotations()[spec.KEY_JOB_DIGEST_ANNOTATION] == spec.key_digest("sk-made-1")
    finally:
        cluster.close()


def test_before_the_ambassador_exists_its_pods_will_read_the_key_at_start(langflow, account: Path):
    """On the first `pulumi up` the Job runs before the Deployment is created (it waits for the key)."""
    cluster = StandInKubernetes({SECRET: {"metadata": {"name": "langflow-ambassador-key"}}})
    try:
        store = SecretStore("langflow", "langflow-ambassador-key", api=cluster.url, account=account)
        ambassador = AmbassadorDeployment("langflow", "langflow-ambassador", api=cluster.url, account=account)
        lines: list[str] = []
        assert ensure_key(langflow.url, [store], lines.append, deployments=[ambassador]) is True
        assert lines[-1].endswith("not created yet (its pods will read the key at start)")
        assert [w[1] for w in cluster.writes] == [SECRET]
    finally:
        cluster.close()


def test_the_job_and_pulumi_agree_on_the_digest():
    assert api_key.KEY_DIGEST_ANNOTATION == spec.KEY_JOB_DIGEST_ANNOTATION != spec.KEY_DIGEST_ANNOTATION
    assert api_key.key_digest("sk-x") == spec.key_digest("sk-x")
