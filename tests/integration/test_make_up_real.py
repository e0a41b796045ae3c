"""The README's first command on a machine with no kube context: `make up` deploys the dev stack onto the
local cluster's real node and ends with a Langflow a person can open.

Everything here is checked on what runs: the containers of every pod (containerd's ids, Jobs' exit codes),
Langflow's UI in Debian's headless Chromium, the shipped flow answering through the API, and a flow made
by hand that outlives `make destroy` on its protected volume.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from localcluster.kubeapi import KubeClient
from tests.integration.conftest import headless_chromium, require_real_node

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "langflow-dev"
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR") or REPO / "test-artifacts")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Machine:
    """This repository's make targets, with the state in a folder of the test's and no kube context."""

    def __init__(self, state: Path, port: int):
        self.state, self.port = state, port
        self.env = {**os.environ, "KUBECONFIG": str(state / "no-kubeconfig"), "LANGFLOW_LOCAL_NODE": "real",
                    "LANGFLOW_LOCAL_PORT": str(port), "LANGFLOW_CLUSTER": "auto"}

    def make(self, *targets: str, timeout: float = 3600) -> str:
        done = subprocess.run(["make", "-s", "-C", str(REPO), *targets, f"STATE_DIR={self.state}"], env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"make {' '.join(targets)} failed:\n{output[-6000:]}"
        return output

    def client(self) -> KubeClient:
        cluster = self.state / "local-cluster"
        server = json.loads((cluster / "localcluster.json").read_text())["server"]
        pki = cluster / "pki"
        return KubeClient(server, str(pki / "ca.crt"), str(pki / "admin.crt"), str(pki / "admin.key"))

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
def machine(toolchain_bin, tmp_path_factory):
    require_real_node(toolchain_bin)
    here = Machine(tmp_path_factory.mktemp("state"), free_port())
    try:
        here.first_up = here.make("up")
        yield here
    finally:
        subprocess.run(["make", "-s", "-C", str(REPO), "cluster-down", f"STATE_DIR={here.state}"], env=here.env,
                       capture_output=True, timeout=300)


def request(url: str, data: dict | None = None, headers: dict | None = None, timeout: float = 60):
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=timeout) as answer:
        return json.loads(answer.read())


def token(machine: Machine) -> dict:
    return {"Authorization": f"Bearer {request(machine.url('/api/v1/auto_login'))['access_token']}"}


def test_make_up_says_where_langflow_answers_and_every_pod_ran_for_real(machine):
    line = re.search(r"Langflow answers on this machine at (http://127\.0\.0\.1:\d+/)", machine.first_up)
    assert line and line.group(1) == machine.url(), machine.first_up[-2000:]
    assert "login is off" in machine.first_up
    assert "pods run as containers on this machine's real node" in machine.first_up
    assert request(machine.url("/health_check"))["db"] == "ok"

    client = machine.client()
    pods = client.items(f"/api/v1/namespaces/{NAMESPACE}/pods")
    assert len(pods) >= 3  # Langflow, the flow sync and the snapshot before it
    for pod in pods:
        status = pod["status"]
        containers = status.get("containerStatuses") or []
        assert containers and all(c.get("containerID", "").startswith("containerd://") for c in containers), pod
        if status["phase"] == "Succeeded":  # a Job's pod: every container ended with 0
            assert all(c["state"]["terminated"]["exitCode"] == 0 for c in containers)
        else:
            assert status["phase"] == "Running" and all(c["ready"] for c in containers), status
    jobs = client.items(f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs")
    assert jobs
    for job in jobs:
        conditions = {c["type"]: c["status"] for c in job["status"].get("conditions") or []}
        assert conditions.get("Complete") == "True", job["metadata"]["name"]
    deployment = client.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/langflow")
    assert deployment["status"].get("readyReplicas") == 1


def test_a_person_opens_it_and_finds_the_shipped_flow(machine, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = headless_chromium(tmp_path)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        driver.set_page_load_timeout(120)
        driver.get(machine.url())
        WebDriverWait(driver, 120).until(lambda d: "Echo" in d.find_element(By.TAG_NAME, "body").text)
        driver.save_screenshot(str(ARTIFACTS / "make-up-real-node.png"))
        assert driver.current_url.startswith(machine.url())
        assert "/login" not in driver.current_url
    except Exception:
        driver.save_screenshot(str(ARTIFACTS / "make-up-real-node-failed.png"))
        raise
    finally:
        driver.quit()


def test_the_shipped_flow_runs_through_the_api(machine):
    key = request(machine.url("/api/v1/api_key/"), {"name": "real-node-test"}, headers=token(machine))["api_key"]
    answer = request(machine.url("/api/v1/run/echo"), {"input_value": "hello from the real node",
                                                        "input_type": "chat", "output_type": "chat"},
                     headers={"x-api-key": key}, timeout=120)
    assert "hello from the real node" in json.dumps(answer)


def test_what_a_person_made_outlives_destroy_and_the_next_up_finds_it(machine):
    made = request(machine.url("/api/v1/flows/"), {"name": "Made by hand", "data": {"nodes": [], "edges": []}},
                   headers=token(machine))
    output = machine.make("destroy")
    assert "langflow-data" in output  # destroy lists what it keeps
    client = machine.client()
    claim = client.get(f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims/langflow-data")
    assert claim["status"]["phase"] == "Bound"
    assert not client.items(f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=app.kubernetes.io/name%3Dlangflow")
    machine.make("up")
    deadline = time.monotonic() + 60
    while True:
        try:
            flows = request(machine.url(f"/api/v1/flows/{made['id']}"), headers=token(machine))
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(1)
    assert flows["name"] == "Made by hand"
