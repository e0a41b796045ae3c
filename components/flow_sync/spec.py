"""The flow sync step, as plain data: a ConfigMap of the revision's flows and the sync script, a Job of
the stack's own Langflow image that applies them through Langflow's API, and the flows ConfigMap that
Langflow's pods load at start-up, written only once the sync succeeded.

With flows.update `sync` the pod template never names the flows revision: a flow-only change replaces
these three objects and leaves the Deployment (and its pods) exactly as it was.
"""

from __future__ import annotations

import hashlib
from typing import Any

from components import langflow_spec
from components.common import object_metadata
from settings.flows import FlowFile, flows_digest
from settings.model import LangflowStackConfig

SCRIPT_KEY = "flowsync.py"  # not a .json: the script reads the folder's *.json only
MOUNT_PATH = "/flow-sync"
# The sync waits this long for Langflow's /health_check, then has as long again to finish.
WAIT_SECONDS = 300
DEADLINE_SECONDS = 2 * WAIT_SECONDS
REVISION_ANNOTATION = "langflow.org/flows-sha256"
COMMIT_ANNOTATION = "langflow.org/flows-commit"


def selector_labels(config: LangflowStackConfig) -> dict[str, str]:
    """The sync Job's pods: never Langflow's selector labels, so no Service sends them traffic."""
    return {"app.kubernetes.io/name": "langflow-flow-sync", "app.kubernetes.io/instance": config.name}


def job_name(config: LangflowStackConfig, revision: str) -> str:
    """Named after the revision: a new revision is a new Job, and the same one is never run twice."""
    return f"{config.name}-flow-sync-{revision[:10]}"


def sync_revision(flows: list[FlowFile], script: str) -> str:
    """The flows revision, and the script that applies them: either changing re-runs the sync."""
    return hashlib.sha256((flows_digest(flows) + "\0" + script).encode()).hexdigest()


def sync_config_map_manifest(config: LangflowStackConfig, flows: list[FlowFile], script: str) -> dict[str, Any]:
    # No name: Pulumi generates one, so each revision's Job reads its own, unchanged, files.
    return {"metadata": langflow_spec.metadata(config, labels=_labels(config)),
            "data": {**{f.file_name: f.text for f in flows}, SCRIPT_KEY: script}}


def _labels(config: LangflowStackConfig) -> dict[str, str]:
    return {**langflow_spec.common_labels(config), **selector_labels(config), "app.kubernetes.io/component": "flow-sync"}


def sync_env(config: LangflowStackConfig, credentials_secret: Any) -> list[dict[str, Any]]:
    """The superuser's credentials, by reference to the stack's Secret; with login off, auto-login needs none."""
    env = [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}]
    if config.auth.enabled:
        env += [{"name": "LANGFLOW_SUPERUSER", "value": config.auth.superuser},
                {"name": "LANGFLOW_SUPERUSER_PASSWORD", "valueFrom": {"secretKeyRef": {
                    "name": credentials_secret, "key": "LANGFLOW_SUPERUSER_PASSWORD"}}}]
    return env


def job_manifest(config: LangflowStackConfig, flows: list[FlowFile], script: str, sync_config_map: Any,
                 credentials_secret: Any) -> dict[str, Any]:
    """One try of the sync against the Service: a failure fails `pulumi up` with Langflow's own message."""
    revision = flows_digest(flows)
    container = {
        "name": "flow-sync",
        "image": config.image.reference(),
        "imagePullPolicy": config.image.pull_policy,
        "command": ["python", f"{MOUNT_PATH}/{SCRIPT_KEY}", "--url", langflow_spec.base_url(config),
                    "--folder", MOUNT_PATH, "--revision", revision, "--wait-seconds", str(WAIT_SECONDS)],
        "env": sync_env(config, credentials_secret),
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": langflow_spec.container_security_context(),
        "volumeMounts": [{"name": "flow-sync", "mountPath": MOUNT_PATH, "readOnly": True}],
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": langflow_spec.pod_security_context(),
        "containers": [container],
        "volumes": [{"name": "flow-sync", "configMap": {"name": sync_config_map}}],
    }
    optional = {"imagePullSecrets": [{"name": n} for n in config.image.pull_secrets],
                "nodeSelector": config.node_selector, "tolerations": config.tolerations}
    pod_spec.update({k: v for k, v in optional.items() if v})
    name = job_name(config, sync_revision(flows, script))
    return {
        "metadata": langflow_spec.metadata(config, name, labels=_labels(config), image=config.image.reference()),
        "spec": {"backoffLimit": 0, "activeDeadlineSeconds": DEADLINE_SECONDS,
                 "template": {"metadata": {"labels": _labels(config)}, "spec": pod_spec}},
    }


def flows_config_map_manifest(config: LangflowStackConfig, flows: list[FlowFile], commit: str | None) -> dict[str, Any]:
    """What Langflow's pods load at start-up: the revision that was synced, under a name the pods always mount."""
    annotations = {REVISION_ANNOTATION: flows_digest(flows), **({COMMIT_ANNOTATION: commit} if commit else {})}
    return {"metadata": object_metadata(config.namespace, langflow_spec.common_labels(config),
                                        {**config.annotations, **annotations}, langflow_spec.flows_config_map_name(config)),
            "data": {f.file_name: f.text for f in flows}}
