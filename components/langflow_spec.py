"""Decisions for the Langflow workload, as plain data.

Each function takes the validated config and returns Kubernetes objects in
wire form (camelCase), so they are tested without Pulumi; the component only
turns them into resources. Values that are only known at deploy time (the
names Pulumi generates for the Secret and the flows ConfigMap) come in as
parameters and are placed as given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

from components.ambassador import spec as ambassador_spec
from components.common import (  # noqa: F401 - IMAGE_ANNOTATION is re-exported
    DATABASE_URL_DIGEST_ANNOTATION, IMAGE_ANNOTATION, disruption_budget, object_metadata, pod_monitor, scrape_annotations, service,
)
from components.edge.spec import cors_origins, external_auth_env, trusted_ca_mount, trusted_ca_volume
from settings.cluster import STACK_ANNOTATION
from settings.kube import safe_label_value
from settings.ambassador import key_from_env
from settings.edge import identity_mode
from settings.managed import CONTAINER_NAME, CONTAINER_PORT, DATA_DIR, STARTUP_BUDGET_SECONDS, TMP_DIR, TRUSTED_CA_DIR
from settings.model import LangflowStackConfig, version_before

SQLITE_URL = f"sqlite:///{DATA_DIR}/langflow.db"
API_KEY_SECRET_KEY = "LANGFLOW_API_KEY"
FLOWS_DIGEST_ANNOTATION = "langflow.org/flows-sha256"
# The image runs as UID 1000, GID 0; fsGroup makes mounted volumes writable for it.
RUN_AS_USER = 1000
FS_GROUP = 1000
# The first Langflow release with LANGFLOW_CUSTOM_COMPONENT_ADMIN_ONLY (lfx 1.10.0).
CUSTOM_COMPONENT_ADMIN_ONLY_SINCE = (1, 10)


DATABASE_CA_PATH = "/etc/langflow/database-ca"


@dataclass(frozen=True)
class DatabaseLink:
    """Where the workload finds its database (values may be Pulumi outputs of the database component)."""

    url_secret: Any  # {"name": ..., "key": ...}: the Secret holding LANGFLOW_DATABASE_URL
    url_digest: Any = None  # changes with the URL, so a new password rolls the pods
    ca_secret: Optional[dict[str, str]] = None  # the server's CA, for sslmode verify-ca/verify-full


def database_link(config: LangflowStackConfig) -> Optional[DatabaseLink]:
    """The link for a URL Secret of the operator's own (database.type url); None with SQLite."""
    if config.database.type == "url":
        return DatabaseLink({"name": config.database.url_secret.name, "key": config.database.url_secret.key})
    return None


# --- names and labels -------------------------------------------------------

def flows_synced(config: LangflowStackConfig) -> bool:
    """Flows from the folder go live through Langflow's API (components/flow_sync), never through the pod template."""
    return config.flows.source == "folder" and config.flows.update == "sync"


def flows_config_map_name(config: LangflowStackConfig) -> str:
    """With flows synced: the ConfigMap the pods load at start-up, always under this name."""
    return f"{config.name}-flows"


def data_claim_name(config: LangflowStackConfig) -> str:
    # Fixed, never auto-generated: renaming it would orphan the data.
    return f"{config.name}-data"


def client_config_map_name(config: LangflowStackConfig) -> str:
    return f"{config.name}-client"


def api_key_secret_name(config: LangflowStackConfig) -> str:
    return f"{config.name}-api-key"


def selector_labels(config: LangflowStackConfig) -> dict[str, str]:
    # Immutable on a Deployment: only labels that never change.
    return {"app.kubernetes.io/name": "langflow", "app.kubernetes.io/instance": config.name}


def init_selector_labels(config: LangflowStackConfig) -> dict[str, str]:
    """The start-up Job's pods: never Langflow's selector labels, so no Service sends them traffic."""
    return {"app.kubernetes.io/name": "langflow-init", "app.kubernetes.io/instance": config.name}


def common_labels(config: LangflowStackConfig) -> dict[str, str]:
    # No version here: a release would otherwise touch every object, the data volume included.
    return {
        **config.labels,
        **selector_labels(config),
        "app.kubernetes.io/managed-by": "pulumi",
        "app.kubernetes.io/part-of": "langflow",
    }


def workload_labels(config: LangflowStackConfig) -> dict[str, str]:
    # A valid tag (up to 128 characters) is not always a valid label value (63): keep what fits;
    # the whole reference is in the IMAGE_ANNOTATION.
    version = safe_label_value(config.image.tag)
    return {**common_labels(config), **({"app.kubernetes.io/version": version} if version else {})}


def rollout_await_annotations(config: LangflowStackConfig) -> dict[str, str]:
    """Make `pulumi up` return only once the new pods serve, and fail if they never do.

    pulumi-kubernetes' built-in Deployment await counts a Recreate rollout as done while the
    new ReplicaSet still has zero pods. JSONPath conditions are only evaluated against a
    status whose observedGeneration is current; together they mean: every pod is of the
    new template, available, and no old pod is left.
    """
    replicas = config.replicas
    conditions = [f"jsonpath={{.status.{field}}}={replicas}"
                  for field in ("updatedReplicas", "availableReplicas", "replicas")]
    return {
        "pulumi.com/waitFor": json.dumps(conditions),
        "pulumi.com/timeoutSeconds": str(config.rollout.timeout_seconds),
    }


def metadata(config: LangflowStackConfig, name: Optional[str] = None, *, labels: Optional[dict[str, str]] = None,
             **extra: Any) -> dict[str, Any]:
    return object_metadata(config.namespace, labels or common_labels(config), config.annotations, name, **extra)


# --- environment -------------------------------------------------------------

def event_delivery(config: LangflowStackConfig) -> Optional[str]:
    # Polling keeps job state in one process; several processes need direct delivery.
    return "direct" if config.replicas > 1 or config.runtime.workers > 1 else None


def container_env(config: LangflowStackConfig, credentials_secret: Any,
                  database: Optional[DatabaseLink] = None) -> list[dict[str, Any]]:
    """Langflow's settings, then the operator's extra env. Secrets are referenced, never inlined."""
    return managed_env(config, credentials_secret, database) + [e.manifest() for e in config.extra_env]


def managed_env(config: LangflowStackConfig, credentials_secret: Any,
                database: Optional[DatabaseLink] = None) -> list[dict[str, Any]]:

    def from_secret(name: str, key: Any, secret: Any) -> dict[str, Any]:
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}

    auth = config.auth
    env: list[dict[str, Any]] = [
        # Langflow and its libraries write below HOME; the image's HOME may sit on the read-only root.
        {"name": "HOME", "value": DATA_DIR},
        {"name": "LANGFLOW_HOST", "value": "0.0.0.0"},
        # Set explicitly: a Service named `langflow` would otherwise inject LANGFLOW_PORT=tcp://...
        {"name": "LANGFLOW_PORT", "value": str(CONTAINER_PORT)},
        {"name": "LANGFLOW_CONFIG_DIR", "value": DATA_DIR},
        {"name": "LANGFLOW_ALEMBIC_LOG_FILE", "value": f"{TMP_DIR}/alembic.log"},
    ]
    database = database or database_link(config)
    if config.database.type == "sqlite":
        env.append({"name": "LANGFLOW_DATABASE_URL", "value": SQLITE_URL})
    elif database is None:
        raise ValueError("database.type postgresql: the database component's URL Secret is required")
    else:
        env.append({"name": "LANGFLOW_DATABASE_URL", "valueFrom": {"secretKeyRef": database.url_secret}})
    env.append({"name": "LANGFLOW_AUTO_LOGIN", "value": _bool(not auth.enabled)})
    if auth.enabled:
        env.append({"name": "LANGFLOW_SUPERUSER", "value": auth.superuser})
        env.append(from_secret("LANGFLOW_SUPERUSER_PASSWORD", "LANGFLOW_SUPERUSER_PASSWORD", credentials_secret))
    # Always set: it also encrypts stored credentials when login is off.
    env.append(from_secret("LANGFLOW_SECRET_KEY", "LANGFLOW_SECRET_KEY", credentials_secret))
    env += [
        {"name": "LANGFLOW_NEW_USER_IS_ACTIVE", "value": _bool(auth.new_user_is_active)},
        {"name": "LANGFLOW_ENABLE_SUPERUSER_CLI", "value": _bool(auth.enable_superuser_cli)},
        {"name": "LANGFLOW_ACCESS_TOKEN_EXPIRE_SECONDS", "value": str(auth.access_token_expire_seconds)},
        {"name": "LANGFLOW_REFRESH_TOKEN_EXPIRE_SECONDS", "value": str(auth.refresh_token_expire_seconds)},
        {"name": "LANGFLOW_BACKEND_ONLY", "value": _bool(config.runtime.backend_only)},
        {"name": "LANGFLOW_WORKERS", "value": str(config.runtime.workers)},
        {"name": "LANGFLOW_LOG_LEVEL", "value": config.runtime.log_level},
        {"name": "LANGFLOW_LOG_ENV", "value": "container_json"},
        {"name": "LANGFLOW_MAX_FILE_SIZE_UPLOAD", "value": str(config.runtime.max_file_size_upload_mb)},
        {"name": "LANGFLOW_DO_NOT_TRACK", "value": "true"},
    ]
    # Browsers may call Langflow from the ingress hosts only (unset, Langflow allows every origin).
    env.append({"name": "LANGFLOW_CORS_ORIGINS", "value": cors_origins(config.ingress)})
    if auth.enabled and not version_before(config.image.tag, CUSTOM_COMPONENT_ADMIN_ONLY_SINCE):
        # Component code runs on the server: with logins, only admins may change it (a setting since 1.10).
        env.append({"name": "LANGFLOW_CUSTOM_COMPONENT_ADMIN_ONLY", "value": "true"})
    if config.flows.source != "none":
        env.append({"name": "LANGFLOW_LOAD_FLOWS_PATH", "value": config.flows.mount_path})
    delivery = event_delivery(config)
    if delivery:
        env.append({"name": "LANGFLOW_EVENT_DELIVERY", "value": delivery})
    # Prometheus on a port of its own: never on the Service clients use.
    env.append({"name": "LANGFLOW_PROMETHEUS_ENABLED", "value": _bool(config.metrics.enabled)})
    if config.metrics.enabled:
        env.append({"name": "LANGFLOW_PROMETHEUS_PORT", "value": str(config.metrics.langflow_port)})
    if sso_per_user(config):
        env += external_auth_env(config.sso)
    if config.trusted_ca.enabled:
        # httpx and the ssl module read SSL_CERT_FILE, requests its own variable: the bundle replaces certifi's.
        bundle = f"{TRUSTED_CA_DIR}/{config.trusted_ca.key}"
        env += [{"name": "SSL_CERT_FILE", "value": bundle}, {"name": "REQUESTS_CA_BUNDLE", "value": bundle}]
    if ambassador_key_from_env(config):
        # The ambassador's key (generated, in the credentials Secret), checked by Langflow itself as the
        # superuser's; database keys still work.
        env += [{"name": "LANGFLOW_API_KEY_SOURCE", "value": "env"},
                from_secret("LANGFLOW_API_KEY", "LANGFLOW_API_KEY", credentials_secret)]
    return env


def sso_per_user(config: LangflowStackConfig) -> bool:
    """Each person signed in through SSO is their own Langflow user (sso.identity)."""
    return identity_mode(config.sso, config.image.tag, config.auth.enabled) == "per-user"


def ambassador_key_from_env(config: LangflowStackConfig) -> bool:
    return config.ambassador.enabled and key_from_env(config.image.tag)


def ambassador_upstream(config: LangflowStackConfig) -> ambassador_spec.Upstream:
    """The Langflow the ambassador fronts, as the ambassador component needs it."""
    return ambassador_spec.Upstream(
        app=config.name, namespace=config.namespace, replicas=config.replicas, selector=selector_labels(config),
        base_url=base_url(config), image=config.image.reference(), pull_policy=config.image.pull_policy,
        pull_secrets=tuple(config.image.pull_secrets), superuser=config.auth.superuser if config.auth.enabled else None,
        metrics=config.metrics.enabled)


def _bool(value: bool) -> str:
    return "true" if value else "false"


# --- volumes --------------------------------------------------------------------

def volumes(config: LangflowStackConfig, flows_config_map: Any, database: Optional[DatabaseLink] = None,
            data_on_claim: bool = True) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if config.storage.enabled and data_on_claim:
        out.append({"name": "data", "persistentVolumeClaim": {"claimName": data_claim_name(config)}})
    else:
        out.append({"name": "data", "emptyDir": {}})
    out.append({"name": "tmp", "emptyDir": {}})
    if flows_synced(config):
        # Written by the flow sync once a revision is live, so a first pod may start before it exists: it then
        # starts with no flows to load, and the sync puts them in through the API.
        out.append({"name": "flows", "configMap": {"name": flows_config_map_name(config), "optional": True}})
    elif config.flows.source == "folder":
        out.append({"name": "flows", "configMap": {"name": flows_config_map}})
    elif config.flows.source == "claim":
        out.append({"name": "flows", "persistentVolumeClaim": {"claimName": config.flows.claim_name, "readOnly": True}})
    if database is not None and database.ca_secret:
        out.append({"name": "database-ca", "secret": {"secretName": database.ca_secret["name"]}})
    if config.trusted_ca.enabled:
        out.append(trusted_ca_volume(config.trusted_ca))
    return out + config.extra_volumes


def volume_mounts(config: LangflowStackConfig, database: Optional[DatabaseLink] = None) -> list[dict[str, Any]]:
    out = [{"name": "data", "mountPath": DATA_DIR}, {"name": "tmp", "mountPath": TMP_DIR}]
    if config.flows.source != "none":
        out.append({"name": "flows", "mountPath": config.flows.mount_path, "readOnly": True})
    if database is not None and database.ca_secret:
        out.append({"name": "database-ca", "mountPath": DATABASE_CA_PATH, "readOnly": True})
    if config.trusted_ca.enabled:
        out.append(trusted_ca_mount(TRUSTED_CA_DIR))
    return out + config.extra_volume_mounts


# --- probes, security, scheduling ---------------------------------------------

def probes() -> dict[str, dict[str, Any]]:
    def http(path: str, period: int, failures: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period,
                "timeoutSeconds": 5, "failureThreshold": failures}

    return {
        # /health answers before the app is ready: liveness only.
        "livenessProbe": http("/health", 20, 3),
        # /health_check queries the database and cache.
        "readinessProbe": http("/health_check", 5, 3),
        # A first start (migrations, starter projects, flows) took 17 to 40 s on 2 cores (make verify). When
        # start-up fails, `langflow run` does not exit but waits for a server that is gone, so only this
        # budget ends it: 5 minutes, not 10, still many times a slow first migration.
        "startupProbe": http("/health", 5, STARTUP_BUDGET_SECONDS // 5),
    }


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": 0,
        "fsGroup": FS_GROUP,
        # Only chown a volume when its root is wrong: fast restarts on large volumes.
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def affinity(config: LangflowStackConfig) -> dict[str, Any]:
    if config.affinity or config.replicas == 1:
        return config.affinity
    # Several replicas: prefer different nodes, so one node failure leaves some serving.
    return {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
        "weight": 100,
        "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": selector_labels(config)}},
    }]}}


def update_strategy(config: LangflowStackConfig) -> dict[str, Any]:
    """Stop the old pod first where two pods cannot overlap: a brief restart on every release.

    SQLite allows one writer; a ReadWriteOnce volume attaches to one node, so a surge pod elsewhere
    would wait forever for it while the old pod holds it. Otherwise (a database server, and a
    shared or no volume) no downtime: one new pod at a time, every old one kept until it is ready.
    """
    if config.database.type == "sqlite" or (config.storage.enabled and config.storage.access_mode != "ReadWriteMany"):
        return {"type": "Recreate"}
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


# --- objects ----------------------------------------------------------------------

def namespace_manifest(namespace: str, labels: dict[str, str], stack: str) -> dict[str, Any]:
    """The namespace's metadata; the stack annotation records who created it (settings/cluster.py)."""
    pod_security = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")}
    return {"name": namespace, "labels": {**labels, **pod_security}, "annotations": {STACK_ANNOTATION: stack}}


def data_claim_manifest(config: LangflowStackConfig) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": [config.storage.access_mode],
        "resources": {"requests": {"storage": config.storage.size}},
    }
    if config.storage.storage_class:
        spec["storageClassName"] = config.storage.storage_class
    return {"metadata": metadata(config, data_claim_name(config)), "spec": spec}


def pod_template(
    config: LangflowStackConfig,
    *,
    credentials_secret: Any,
    flows_config_map: Any = None,
    flows_digest: Optional[str] = None,
    database: Optional[DatabaseLink] = None,
    data_on_claim: bool = True,
) -> dict[str, Any]:
    """The Langflow pod: the Deployment's template, and the init Job's."""
    database = database or database_link(config)
    container = {
        "name": CONTAINER_NAME,
        "image": config.image.reference(),
        "imagePullPolicy": config.image.pull_policy,
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}] + (
            [{"name": "metrics", "containerPort": config.metrics.langflow_port, "protocol": "TCP"}]
            if config.metrics.enabled else []),
        "env": container_env(config, credentials_secret, database),
        "resources": {"requests": config.resources.requests, "limits": config.resources.limits},
        "securityContext": container_security_context(),
        "volumeMounts": volume_mounts(config, database),
        **probes(),
    }
    template_annotations = dict(config.annotations)
    if config.metrics.enabled:
        template_annotations.update(scrape_annotations(config.metrics.langflow_port))
    if flows_digest:
        # Records which flows a pod runs; a flow change also renames the ConfigMap, which rolls the pods.
        template_annotations[FLOWS_DIGEST_ANNOTATION] = flows_digest
    if database is not None and database.url_digest is not None:
        # The URL Secret keeps its name when a password changes: this rolls the pods that read it.
        template_annotations[DATABASE_URL_DIGEST_ANNOTATION] = database.url_digest
    pod_spec: dict[str, Any] = {
        # Service links would inject LANGFLOW_PORT=tcp://... for a Service named langflow.
        "enableServiceLinks": False,
        # Langflow never calls the Kubernetes API.
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": volumes(config, flows_config_map, database, data_on_claim),
        "terminationGracePeriodSeconds": 60,
    }
    optional = {
        "imagePullSecrets": [{"name": n} for n in config.image.pull_secrets],
        "nodeSelector": config.node_selector,
        "tolerations": config.tolerations,
        "affinity": affinity(config),
    }
    pod_spec.update({k: v for k, v in optional.items() if v})
    template_metadata: dict[str, Any] = {"labels": workload_labels(config)}
    if template_annotations:
        template_metadata["annotations"] = template_annotations
    return {"metadata": template_metadata, "spec": pod_spec}


# Kubernetes sends a stopping pod SIGTERM while it takes it out of the Service's endpoints and the
# headless Service's DNS, not after. Langflow closes its listening socket on SIGTERM, so a connection still
# routed to it meanwhile is refused or, already queued, reset: a 502 at the ambassador or the ingress
# (seen once in 200 runs in tests/langflow/test_flow_sync_real.py). Serving on this long first covers the
# endpoint update, the cluster DNS TTL (5 s) and the ambassador's resolver hold (5 s). Only where pods roll
# one by one: with Recreate there is no other pod to move to. Within terminationGracePeriodSeconds (60).
PRE_STOP_SECONDS = 15


def deployment_manifest(config: LangflowStackConfig, **template: Any) -> dict[str, Any]:
    deployment_metadata = metadata(config, config.name, labels=workload_labels(config), image=config.image.reference())
    deployment_metadata["annotations"].update(rollout_await_annotations(config))
    pod, strategy = pod_template(config, **template), update_strategy(config)
    if strategy["type"] == "RollingUpdate":
        pod["spec"]["containers"][0]["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", str(PRE_STOP_SECONDS)]}}}
    return {
        "metadata": deployment_metadata,
        "spec": {
            "replicas": config.replicas,
            # ReplicaSets kept for `kubectl rollout undo`; the releases themselves are in the stack's history.
            "revisionHistoryLimit": 10,
            # A rollout that makes no progress for this long is marked failed (ProgressDeadlineExceeded).
            "progressDeadlineSeconds": config.rollout.timeout_seconds,
            "selector": {"matchLabels": selector_labels(config)},
            "strategy": strategy,
            "template": pod,
        },
    }


# Langflow's own start-up, run once by the init Job before the Deployment rolls: migrations, the superuser,
# starter projects and the flows, so that several replicas never race on them. `langflow run` does not exit
# when its server fails, so the script watches both, and the Job's deadline bounds it.
INIT_SCRIPT = """\
langflow run & server=$!
until python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$LANGFLOW_PORT/health_check', timeout=5)" 2>/dev/null; do
  kill -0 "$server" 2>/dev/null || exit 1
  sleep 2
done
kill -TERM "$server"
wait "$server"
exit 0
"""


def init_job_needed(config: LangflowStackConfig) -> bool:
    # SQLite means one pod on one volume, which does this itself; a shared database needs it done once.
    return config.database.type != "sqlite"


def init_job_manifest(config: LangflowStackConfig, **template: Any) -> dict[str, Any]:
    """A Job of the same image and env as the Deployment that runs Langflow's start-up once and exits."""
    # Its own data folder: a ReadWriteOnce claim may be held by a running pod on another node.
    pod = pod_template(config, **template, data_on_claim=False)
    (container,) = pod["spec"]["containers"]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        container.pop(probe)
    container["command"] = ["/bin/sh", "-c", INIT_SCRIPT]
    pod["spec"]["restartPolicy"] = "Never"
    # Not Langflow's selector labels: the Service must never send traffic to this short-lived server.
    pod["metadata"]["labels"] = {**pod["metadata"]["labels"], **init_selector_labels(config),
                                 "app.kubernetes.io/component": "init"}
    return {
        "metadata": metadata(config, image=config.image.reference()),
        "spec": {
            "backoffLimit": 1,
            # The startup probe's budget: a start-up that hangs fails the Job, and `pulumi up` with it.
            "activeDeadlineSeconds": STARTUP_BUDGET_SECONDS,
            "template": pod,
        },
    }


def service_manifest(config: LangflowStackConfig) -> dict[str, Any]:
    meta = metadata(config, config.name)
    if config.service.annotations:
        meta["annotations"] = {**meta.get("annotations", {}), **config.service.annotations}
    return service(meta, {
        "type": config.service.type,
        "selector": selector_labels(config),
        "ports": [{"name": "http", "port": config.service.port, "targetPort": "http", "protocol": "TCP"}],
    })


def pdb_needed(config: LangflowStackConfig) -> bool:
    return config.replicas > 1


def pdb_manifest(config: LangflowStackConfig) -> dict[str, Any]:
    return disruption_budget(metadata(config, config.name), selector_labels(config))


def pod_monitor_manifest(config: LangflowStackConfig) -> dict[str, Any]:
    return pod_monitor(metadata(config, config.name), selector_labels(config), "metrics")


def base_url(config: LangflowStackConfig) -> str:
    """In-cluster URL of the API; `<svc>.<ns>.svc` resolves from any namespace, whatever the cluster domain."""
    return f"http://{config.name}.{config.namespace}.svc:{config.service.port}"


def client_settings(config: LangflowStackConfig, default_flow: Optional[str]) -> dict[str, str]:
    """What a client of `POST /api/v1/run/{flow}` reads from its environment, minus the key itself.

    With the ambassador on, the client calls it and holds no key at all: the ambassador adds it."""
    if config.ambassador.enabled:
        out = {"LANGFLOW_BASE_URL": ambassador_spec.base_url(config.ambassador, ambassador_upstream(config))}
    else:
        out = {
            "LANGFLOW_BASE_URL": base_url(config),
            "LANGFLOW_API_KEY_SECRET": api_key_secret_name(config),
            "LANGFLOW_API_KEY_SECRET_KEY": API_KEY_SECRET_KEY,
        }
    if default_flow:
        out["LANGFLOW_DEFAULT_FLOW_ID"] = default_flow
    return out


def client_config_map_manifest(config: LangflowStackConfig, default_flow: Optional[str]) -> dict[str, Any]:
    return {"metadata": metadata(config, client_config_map_name(config)), "data": client_settings(config, default_flow)}


def flows_config_map_manifest(config: LangflowStackConfig, flows: dict[str, str]) -> dict[str, Any]:
    # No name: Pulumi generates one, so changed flows get a new ConfigMap and the pods roll.
    return {"metadata": metadata(config), "data": flows}
