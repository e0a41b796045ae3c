"""The policy pack through the real Pulumi CLI: `pulumi preview --policy-pack <project>/policy`.

The CLI runs the pack with the Python language host in the project's virtualenv (PulumiPolicy.yaml),
against the resources the real engine registers in a preview, values not known yet included. Both
stacks pass it; prod with a config the program accepts but the pack refuses fails, naming the policy.
One local cluster serves the whole module (the program reads the cluster: is the namespace ours?).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from tests.integration.pulumi_project import Project

pytestmark = pytest.mark.integration

PACK = "langflow-policy"


def configure(project: Project, change) -> None:
    """`change(config)` edits the stack file's config, as an operator would."""
    stack_file = project.stack_file()
    document = yaml.safe_load(stack_file.read_text())
    change(document["config"])
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))


def plain_http(config):
    # The program accepts plain HTTP once single sign-on (which needs HTTPS) is off; the pack does not.
    config["langflow:sso"] = {"enabled": False}
    config["langflow:ingress"]["tls"] = {"mode": "none"}  # mode none takes no issuer and no Secret


def no_sign_in(config):
    # Login off and no single sign-on: the program accepts it without an Ingress; the pack does not, in prod.
    config["langflow:auth"] = {"enabled": False}  # the program refuses the login keys with login off
    config["langflow:sso"] = {"enabled": False}
    config["langflow:ingress"] = {"enabled": False}


# name: (stack, config change)
PREVIEWS = {"dev": ("dev", None), "prod": ("prod", None), "prod-plain-http": ("prod", plain_http),
            "prod-no-sign-in": ("prod", no_sign_in)}


@pytest.fixture(scope="module")
def cluster(local_cluster_module):
    return local_cluster_module()


@pytest.fixture(scope="module")
def previews(toolchain_bin, cluster, tmp_path_factory) -> dict[str, tuple[int, str]]:
    """`pulumi preview --policy-pack <project>/policy` for each of PREVIEWS, each in its own copy of the project,
    all at once (they only read the cluster): name -> (exit code, output)."""
    roots = {name: tmp_path_factory.mktemp(name) for name in PREVIEWS}

    def run(name: str) -> tuple[int, str]:
        stack, change = PREVIEWS[name]
        project = Project(roots[name], stack, toolchain_bin, cluster.kubeconfig)
        if change is not None:
            configure(project, change)
        proc = project.run("preview", "--policy-pack", str(project.root / "policy"), check=False)
        return proc.returncode, proc.stdout + proc.stderr

    with ThreadPoolExecutor(len(PREVIEWS)) as pool:
        return dict(zip(PREVIEWS, pool.map(run, PREVIEWS)))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_passes_the_pack(stack, previews):
    code, output = previews[stack]
    assert code == 0, output[-6000:]
    assert f"{PACK}@v" in output, output[-3000:]  # the pack ran
    # Advisory policies may warn (PodDisruptionBudgets, NetworkPolicies); no mandatory one may.
    assert "[mandatory]" not in output and "Traceback" not in output, output[-6000:]


def test_prod_without_tls_fails_the_pack(previews):
    code, output = previews["prod-plain-http"]
    assert code != 0, output[-6000:]
    assert "Invalid configuration" not in output, output[-6000:]  # the program itself accepted it
    assert "[mandatory]  ingress-tls  (kubernetes:networking.k8s.io/v1:Ingress: langflow)" in output, output[-6000:]
    assert "Ingress langflow/langflow: spec.tls is not set, so it serves plain HTTP" in output, output[-6000:]
    assert "Traceback" not in output, output[-6000:]


def test_prod_without_authentication_fails_the_pack(previews):
    code, output = previews["prod-no-sign-in"]
    assert code != 0, output[-6000:]
    assert "Invalid configuration" not in output, output[-6000:]  # the program itself accepted it
    assert "[mandatory]  langflow-authentication  (kubernetes:apps/v1:Deployment: langflow)" in output, output[-6000:]
    assert "Deployment langflow/langflow runs Langflow with its login off" in output, output[-6000:]
    assert "no oauth2-proxy is in front of it" in output and "Traceback" not in output, output[-6000:]


def test_make_up_enforces_the_pack(toolchain_bin, cluster, tmp_path):
    """`make up` (releases/, on the Automation API) runs the pack too. The Automation API's up skips its
    preview, so the engine judges each resource as it reaches it: the release fails, naming the policy, and the
    violating Deployment is never created (what the update applied before it stays)."""
    project = Project(tmp_path, "dev", toolchain_bin, cluster.kubeconfig, git=True)

    def literal_key(config):
        config["langflow:extra_env"] = [{"name": "OPENAI_API_KEY", "value": "sk-not-a-real-key"}]
        config["langflow:backups"] = {"enabled": False}  # quicker: no backup Job to run before the Deployment

    configure(project, literal_key)  # the program accepts a literal value in extra_env
    project.commit("a key written into the stack file")
    proc = project.releases("up", "--message", "literal key")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-6000:]
    assert "Invalid configuration" not in output, output[-6000:]  # the program itself accepted it
    assert "[mandatory]  no-literal-credentials" in output, output[-6000:]
    assert "container 'langflow' (spec.template.spec.containers[0].env[" in output and "OPENAI_API_KEY) holds a " \
        "credential as a literal value" in output, output[-6000:]
    assert "Traceback" not in output, output[-6000:]
    resources = json.loads(project.run("stack", "export").stdout).get("deployment", {}).get("resources") or []
    assert "kubernetes:apps/v1:Deployment" not in [r["type"] for r in resources], resources
    deployments = cluster.client().items("/apis/apps/v1/namespaces/langflow-dev/deployments")
    assert deployments == [], [d["metadata"]["name"] for d in deployments]
