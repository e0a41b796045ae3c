"""The ambassador, as plain data: HAProxy's config, and the objects that run it.

HAProxy, because it does all of this job itself: a request id per request (kept when the client sent a sane
one), retries limited to connection failures (`retry-on conn-failure`: a request that reached Langflow is
never sent again), passive outlier ejection (`observe layer7` with `on-error mark-down`) and active health
checks that bring a pod back, JSON error bodies with the request id (`http-error ... lf-string`), a
per-client rate limit (a stick table), a JSON access log, and a Prometheus exporter built in. nginx's open
source build has neither active checks nor metrics; Envoy does it all too, but is not in Debian, and the
tests run the very release the pods run.

HAProxy reaches each Langflow pod by its address (a headless Service, resolved by HAProxy itself), so that
a failing pod is ejected alone; the ClusterIP Service would hide which pod failed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Optional

# What the pod template carries of the key, computed by the key Job's own script on Langflow 1.6 and by Pulumi on
# 1.7+: a SHA-256 of a random 256-bit key tells nothing of it.
from flowsync.api_key import KEY_DIGEST_ANNOTATION as KEY_JOB_DIGEST_ANNOTATION, key_digest  # noqa: F401 - re-exported
from components.common import disruption_budget, object_metadata, pod_monitor, scrape_annotations, service
from settings.ambassador import AMBASSADOR_PORT, AmbassadorConfig
from settings.managed import CONTAINER_PORT

CONFIG_KEY = "haproxy.cfg"
CONFIG_DIR = "/usr/local/etc/haproxy"  # where the official image reads its config
API_KEY_ENV = "LANGFLOW_API_KEY"
API_KEY_SECRET_KEY = "LANGFLOW_API_KEY"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
REQUEST_ID_HEADER = "X-Request-ID"
# The official image runs HAProxy as user `haproxy` (UID and GID 99) since 2.4.
HAPROXY_UID = 99
# A client's own request id is kept only when it is this plain (it goes into JSON logs and bodies as is).
SANE_REQUEST_ID = r"^[A-Za-z0-9._:-]{1,128}$"
# Kubernetes removes a stopping pod from the endpoints while it still serves: wait that out, then drain.
PRE_STOP_SECONDS = 5
DRAIN_SECONDS = 30
CONFIG_DIGEST_ANNOTATION = "langflow.org/ambassador-config-sha256"
# The key's digest on the pod template: a new key rolls the pods (HAProxy reads the key once, at start).
# Pulumi sets this one on Langflow 1.7+; the key Job (1.6) sets KEY_JOB_DIGEST_ANNOTATION (imported above) on the
# shared Deployment, a field of its own, so that Pulumi's server-side apply never meets a field another manager set.
KEY_DIGEST_ANNOTATION = "langflow.org/ambassador-key-sha256"

# Every place Langflow reads a credential from a request (langflow-base 0.6.4, the 1.6.4 release, and
# langflow-base/lfx 1.13.0: langflow/services/auth/utils.py, service.py, external.py): the x-api-key
# query parameter (preferred to the header), the x-api-key header, a Bearer token in Authorization (also
# the external-auth header the edge sets), the access_token_lf cookie (1.13) or the external-auth cookie,
# and, on websockets, the api_key header and the x-api-key, api_key and token query parameters. Only the
# ambassador's key may reach Langflow: these headers are dropped...
CLIENT_CREDENTIAL_HEADERS = ("x-api-key", "api_key", "Authorization", "Cookie")
# ... and these query parameters refused (below, why not dropped).
CLIENT_CREDENTIAL_PARAMS = ("x-api-key", "api_key", "token")
# Langflow (uvicorn) decodes the path after HAProxy matched the allowed prefixes on the raw one: a path that
# could mean another after decoding or resolving is refused. Substrings (any case) no plain API path holds:
# encoded '.', '/', backslash, '%' (double encoding) and NUL, '//', ';' (path parameters) and a backslash
# (written `\\` in haproxy.cfg, where a backslash escapes).
PATH_REFUSED_SUBSTRINGS = ("%2e", "%2f", "%5c", "%25", "%00", "//", ";", "\\\\")
# ... and a dot segment ('.' or '..' between slashes, or at the end).
DOT_SEGMENT = "(^|/)[.][.]?(/|$)"
PATH_REFUSED = ("the path is not in plain form: dot segments, double slashes, semicolons, backslashes and encoded "
                "dots, slashes, backslashes or percent signs are refused")
QUERY_CREDENTIAL_REFUSED = ("send no credential in the query string (x-api-key, api_key, token): the ambassador adds "
                            "the API key itself")


def name(app: str) -> str:
    return f"{app}-ambassador"


def langflow_pods_service_name(app: str) -> str:
    """The headless Service that lists Langflow's ready pods, one DNS record each."""
    return f"{app}-pods"


def key_secret_name(app: str) -> str:
    return f"{name(app)}-key"


def selector_labels(app: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "langflow-ambassador", "app.kubernetes.io/instance": name(app)}


def labels(app: str, base: dict[str, str]) -> dict[str, str]:
    return {**base, **selector_labels(app), "app.kubernetes.io/component": "ambassador",
            "app.kubernetes.io/part-of": "langflow", "app.kubernetes.io/managed-by": "pulumi"}


def langflow_address(app: str, namespace: str, cluster_domain: str) -> str:
    return f"{langflow_pods_service_name(app)}.{namespace}.svc.{cluster_domain}"


def server_slots(replicas: int) -> int:
    """Room for every Langflow pod during a rolling update (old and new side by side), at least 4."""
    return max(4, 2 * replicas)


def _json_body(status: int, error: str) -> str:
    """A JSON error body as an HAProxy log-format string (single-quoted), with the request id."""
    body = json.dumps({"status": status, "error": error, "request_id": "REQUEST_ID"}, separators=(",", ":"))
    return "'" + body.replace('"REQUEST_ID"', '"%[var(txn.request_id)]"') + "'"


# Fields of the access log: one JSON object per request, strings escaped by HAProxy (%{+E}).
LOG_FIELDS = (
    ("time", '"%{+E}t"'), ("request_id", '"%[var(txn.request_id)]"'), ("client", '"%ci"'),
    ("method", '"%{+E}HM"'), ("path", '"%{+E}HPO"'), ("flow", '"%[var(txn.flow)]"'), ("status", "%ST"),
    ("duration_ms", "%Ta"), ("upstream_ms", "%Tr"), ("upstream", '"%s"'), ("retries", "%rc"),
    ("termination", '"%ts"'), ("bytes_out", "%B"),
)


def credential_param_regex(names: tuple[str, ...] = CLIENT_CREDENTIAL_PARAMS) -> str:
    """A regex, for HAProxy to match case-insensitively (`-i`) on the raw query string, for a parameter named
    any of `names` anywhere in it, each character plain or percent-encoded (Langflow decodes names once)."""
    def char(c: str) -> str:
        forms = sorted({c, *(f"%{ord(v):02x}" for v in {c.lower(), c.upper()})})
        return forms[0] if len(forms) == 1 else "(" + "|".join(forms) + ")"
    return "(^|&)(" + "|".join("".join(char(c) for c in name) for name in names) + ")(=|&|$)"


def haproxy_config(config: AmbassadorConfig, *, metrics: bool, bind: str, langflow_host: str, langflow_port: int,
                   langflow_slots: int) -> str:
    """haproxy.cfg. `bind`: where clients call (every address for the shared Deployment, 127.0.0.1 in a
    client's pod); `langflow_host`: the headless Service's full name, resolved by HAProxy's own resolver,
    which re-reads it as pods come and go."""
    timeouts, ejection = config.timeouts, config.outlier_ejection
    log_format = "{" + ",".join(f'"{key}":{value}' for key, value in LOG_FIELDS) + "}"
    lines = [
        "global",
        "    log stdout format raw local0",
        "    maxconn 4096",
        # A stop (SIGUSR1, the image's stop signal; SIGTERM too with -W) lets requests in flight finish.
        f"    hard-stop-after {DRAIN_SECONDS}s",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option dontlognull",
        f"    timeout connect {timeouts.connect_seconds}s",
        f"    timeout queue {timeouts.connect_seconds}s",
        f"    timeout server {timeouts.response_seconds}s",
        # The client side waits as long as the answer may take (a streamed answer pauses between events).
        f"    timeout client {timeouts.response_seconds}s",
        "    timeout http-request 30s",
        "    timeout http-keep-alive 60s",
        # Only a failed connection is retried, each time on another pod: the request never reached Langflow.
        f"    retries {config.retries.connect_failures}",
        "    retry-on conn-failure",
        "    option redispatch 1",
        f"    http-error status 503 content-type application/json lf-string "
        f"{_json_body(503, 'Langflow is unavailable: no Langflow pod accepted the connection')}",
        f"    http-error status 504 content-type application/json lf-string "
        f"{_json_body(504, f'Langflow did not answer within {timeouts.response_seconds} s')}",
        f"    http-error status 502 content-type application/json lf-string "
        f"{_json_body(502, 'Langflow closed the connection without a valid answer')}",
        f"    http-error status 408 content-type application/json lf-string "
        f"{_json_body(408, 'the request was not received in time')}",
        f"    http-error status 400 content-type application/json lf-string {_json_body(400, 'bad request')}",
        "",
        "frontend api",
        f"    bind {bind}",
        f"    monitor-uri {HEALTH_PATH}",
        f"    log-format '{log_format}'",
        # The request id: the client's, when it sent a plain one; a new one otherwise.
        f"    http-request set-var(txn.request_id) req.hdr({REQUEST_ID_HEADER}) "
        f"if {{ req.hdr({REQUEST_ID_HEADER}) -m reg {SANE_REQUEST_ID} }}",
        "    http-request set-var(txn.request_id) uuid() unless { var(txn.request_id) -m found }",
        f"    http-request set-header {REQUEST_ID_HEADER} %[var(txn.request_id)]",
        f"    http-after-response set-header {REQUEST_ID_HEADER} %[var(txn.request_id)]",
        "    http-request set-var(txn.flow) path,field(5,/) if { path_beg /api/v1/run/ }",
    ]
    if config.rate_limit_per_client is not None:
        lines += [
            "    stick-table type ip size 100k expire 10s store http_req_rate(1s)",
            "    http-request track-sc0 src",
            f"    http-request deny deny_status 429 content-type application/json lf-string "
            f"{_json_body(429, f'more than {config.rate_limit_per_client} requests per second from this client')} "
            f"if {{ sc_http_req_rate(0) gt {config.rate_limit_per_client} }}",
        ]
    allowed = " ".join(config.allowed_paths)
    lines += [
        # Refused rather than normalised: a client has no reason to send such a path, and Langflow would
        # resolve it in its own way after HAProxy checked the prefix.
        f"    http-request deny deny_status 400 content-type application/json lf-string "
        f"{_json_body(400, PATH_REFUSED)} "
        f"if {{ path -m sub -i {' '.join(PATH_REFUSED_SUBSTRINGS)} }} || {{ path -m reg {DOT_SEGMENT} }}",
        f"    http-request deny deny_status 403 content-type application/json lf-string "
        f"{_json_body(403, 'this path is not open to API clients')} unless {{ path_beg {allowed} }}",
        # A key in the query string is refused, not dropped: HAProxy cannot rebuild a query parameter by
        # parameter (every encoding of the name) without Lua, and a client that sends one would otherwise
        # believe its key is used; the JSON 400 says what to remove.
        f"    http-request deny deny_status 400 content-type application/json lf-string "
        f"{_json_body(400, QUERY_CREDENTIAL_REFUSED)} "
        f"if {{ query -m reg -i {credential_param_regex()} }}",
        # The key is the ambassador's alone: whatever credential a client sent is dropped, its key replaced.
        *[f"    http-request del-header {header}" for header in CLIENT_CREDENTIAL_HEADERS],
        f'    http-request set-header x-api-key "${{{API_KEY_ENV}}}"',
        "    default_backend langflow",
        "",
        "backend langflow",
        "    balance leastconn",
        "    option httpchk GET /health_check",
        "    http-check expect status 200",
    ]
    server = (f"check inter {ejection.check_interval_seconds}s fall 2 rise 2 "
              f"observe layer7 error-limit {ejection.consecutive_errors} on-error mark-down")
    lines += [f"    server-template langflow {langflow_slots} {langflow_host}:{langflow_port} "
              f"resolvers cluster init-addr none {server}",
              "",
              "resolvers cluster",
              "    parse-resolv-conf",
              "    hold valid 5s",
              "    accepted_payload_size 8192"]
    # The pod's own port: probes and Prometheus reach it on the pod address, in either shape.
    lines += ["", "frontend admin", f"    bind :{config.admin_port}", "    no log", f"    monitor-uri {HEALTH_PATH}"]
    if metrics:
        lines.append(f"    http-request use-service prometheus-exporter if {{ path {METRICS_PATH} }}")
    lines.append("    http-request deny deny_status 404")
    return "\n".join(lines) + "\n"


def shared_bind() -> str:
    return f":{AMBASSADOR_PORT}"


def sidecar_bind(config: AmbassadorConfig) -> str:
    return f"127.0.0.1:{config.sidecar_port}"


# --- what the ambassador knows of the Langflow it fronts -----------------------------------------

@dataclass(frozen=True)
class Upstream:
    """The Langflow behind the ambassador, as plain data (langflow_spec.ambassador_upstream builds it)."""

    app: str
    namespace: str
    replicas: int
    selector: dict[str, str]  # Langflow's pods
    base_url: str  # Langflow's Service, for the key Job
    image: str  # Langflow's image: the key Job runs in it (Python and nothing else needed)
    pull_policy: str
    pull_secrets: tuple[str, ...]
    superuser: Optional[str]  # None: login off, the key Job signs in through auto-login
    metrics: bool


@dataclass(frozen=True)
class Objects:
    """Common metadata of the ambassador's objects."""

    app: str
    labels: dict[str, str]
    annotations: dict[str, str]

    def metadata(self, namespace: str, object_name: Optional[str] = None, *,
                 object_labels: Optional[dict[str, str]] = None, image: Optional[str] = None) -> dict[str, Any]:
        return object_metadata(namespace, object_labels or labels(self.app, self.labels), self.annotations,
                               object_name, image=image)


def config_text(config: AmbassadorConfig, upstream: Upstream, *, sidecar: bool) -> str:
    return haproxy_config(config, metrics=upstream.metrics, bind=sidecar_bind(config) if sidecar else shared_bind(),
                          langflow_host=langflow_address(upstream.app, upstream.namespace, config.cluster_domain),
                          langflow_port=CONTAINER_PORT, langflow_slots=server_slots(upstream.replicas))


def config_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def pod_annotations(config_sha256: Any, key_sha256: Any = None) -> dict[str, Any]:
    """A changed config or key rolls the pods: HAProxy reads both once, at start. Without `key_sha256`
    (Langflow 1.6: Pulumi never sees the key) the key Job sets KEY_JOB_DIGEST_ANNOTATION itself."""
    out = {CONFIG_DIGEST_ANNOTATION: config_sha256}
    if key_sha256 is not None:
        out[KEY_DIGEST_ANNOTATION] = key_sha256
    return out


def langflow_pods_service_manifest(upstream: Upstream, objects: Objects) -> dict[str, Any]:
    """Headless: one DNS record per ready Langflow pod, so HAProxy sees (and ejects) each pod."""
    return service(objects.metadata(upstream.namespace, langflow_pods_service_name(upstream.app)),
                   {"clusterIP": "None", "selector": dict(upstream.selector),
                    "ports": [{"name": "http", "port": CONTAINER_PORT, "targetPort": "http", "protocol": "TCP"}]})


def config_map_manifest(namespace: str, objects: Objects, text: str, object_name: Optional[str] = None) -> dict[str, Any]:
    """The shared ambassador's config has no name (a change is a new ConfigMap, and the pods roll); a
    sidecar's is named, for client teams to mount."""
    return {"metadata": objects.metadata(namespace, object_name), "data": {CONFIG_KEY: text}}


def key_secret_manifest(namespace: str, objects: Objects, key: Any = None) -> dict[str, Any]:
    """With `key` (Langflow 1.7+): the generated key. Without: empty, for the key Job to fill."""
    out: dict[str, Any] = {"metadata": objects.metadata(namespace, key_secret_name(objects.app)), "type": "Opaque"}
    if key is not None:
        out["string_data"] = {API_KEY_SECRET_KEY: key}
    return out


CONFIG_VOLUME = "langflow-ambassador-config"


def container(config: AmbassadorConfig, image: str, app: str, *, sidecar: bool) -> dict[str, Any]:
    """HAProxy, as the official image runs it; the key from the Secret, into the config's ${LANGFLOW_API_KEY}."""
    def probe(period: int) -> dict[str, Any]:
        return {"httpGet": {"path": HEALTH_PATH, "port": "admin"}, "periodSeconds": period, "timeoutSeconds": 3,
                "failureThreshold": 3}

    ports = [{"name": "admin", "containerPort": config.admin_port, "protocol": "TCP"}]
    if not sidecar:
        ports.insert(0, {"name": "http", "containerPort": AMBASSADOR_PORT, "protocol": "TCP"})
    return {
        "name": "langflow-ambassador",
        "image": image,
        "command": ["haproxy", "-W", "-db", "-f", f"{CONFIG_DIR}/{CONFIG_KEY}"],
        "env": [{"name": API_KEY_ENV, "valueFrom": {"secretKeyRef": {"name": key_secret_name(app),
                                                                     "key": API_KEY_SECRET_KEY}}}],
        "ports": ports,
        "readinessProbe": probe(5),
        "livenessProbe": probe(20),
        # The endpoints drop a stopping pod a moment after it is told to stop: keep serving meanwhile.
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRE_STOP_SECONDS)]}}},
        "resources": config.resources,
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                            "runAsUser": HAPROXY_UID, "runAsGroup": HAPROXY_UID,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [{"name": CONFIG_VOLUME, "mountPath": CONFIG_DIR, "readOnly": True}],
    }


def pod_security_context() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": HAPROXY_UID, "runAsGroup": HAPROXY_UID,
            "seccompProfile": {"type": "RuntimeDefault"}}


def deployment_manifest(config: AmbassadorConfig, upstream: Upstream, objects: Objects, image: str,
                        config_map: Any, config_sha256: str, key_sha256: Any = None) -> dict[str, Any]:
    app, namespace = upstream.app, upstream.namespace
    template_annotations = pod_annotations(config_sha256, key_sha256)
    if upstream.metrics:
        template_annotations.update(scrape_annotations(config.admin_port))
    return {
        "metadata": objects.metadata(namespace, name(app), image=image),
        "spec": {
            "replicas": config.replicas,
            "selector": {"matchLabels": selector_labels(app)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {**labels(app, objects.labels), "app.kubernetes.io/version": config.image.tag},
                             "annotations": template_annotations},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    # The pre-stop pause, then HAProxy's own drain.
                    "terminationGracePeriodSeconds": PRE_STOP_SECONDS + DRAIN_SECONDS,
                    "securityContext": pod_security_context(),
                    "containers": [container(config, image, app, sidecar=False)],
                    "volumes": [{"name": CONFIG_VOLUME, "configMap": {"name": config_map}}],
                    "imagePullSecrets": [{"name": n} for n in upstream.pull_secrets],
                },
            },
        },
    }


def service_manifest(config: AmbassadorConfig, upstream: Upstream, objects: Objects) -> dict[str, Any]:
    return service(objects.metadata(upstream.namespace, name(upstream.app)),
                   {"type": "ClusterIP", "selector": selector_labels(upstream.app),
                    "ports": [{"name": "http", "port": config.port, "targetPort": "http", "protocol": "TCP"}]})


def pdb_manifest(upstream: Upstream, objects: Objects) -> dict[str, Any]:
    return disruption_budget(objects.metadata(upstream.namespace, name(upstream.app)), selector_labels(upstream.app))


def pod_monitor_manifest(upstream: Upstream, objects: Objects) -> dict[str, Any]:
    return pod_monitor(objects.metadata(upstream.namespace, name(upstream.app)), selector_labels(upstream.app), "admin",
                       METRICS_PATH)


def base_url(config: AmbassadorConfig, upstream: Upstream) -> str:
    """Where API clients call Langflow through the shared ambassador."""
    return f"http://{name(upstream.app)}.{upstream.namespace}.svc:{config.port}"


def sidecar_output(config: AmbassadorConfig, upstream: Upstream, image: str, config_sha256: str,
                   key_sha256: Any = None) -> dict[str, Any]:
    """What a client team adds to its pods, in a namespace of `sidecar_namespaces` (where the program put the
    ConfigMap and the key Secret): the container, the volume, and the address the client calls."""
    return {
        "base_url": f"http://127.0.0.1:{config.sidecar_port}",
        "container": container(config, image, upstream.app, sidecar=True),
        "volume": {"name": CONFIG_VOLUME, "configMap": {"name": name(upstream.app)}},
        # Put on the pod template: a changed config (or, on Langflow 1.7+, key) then rolls the client's pods
        # at its next deploy (HAProxy reads both at start).
        "pod_annotations": pod_annotations(config_sha256, key_sha256),
        "namespaces": list(config.sidecar_namespaces),
    }


# --- the key Job (Langflow before 1.7) ----------------------------------------------------------

KEY_JOB_MOUNT = "/ambassador-key"
KEY_SCRIPT = "api_key.py"
KEY_WAIT_SECONDS = 300


def key_job_name(app: str) -> str:
    return f"{name(app)}-key"


def key_job_selector_labels(app: str) -> dict[str, str]:
    """Never Langflow's nor the ambassador's selector labels: no Service sends the Job traffic."""
    return {"app.kubernetes.io/name": "langflow-ambassador-key", "app.kubernetes.io/instance": name(app)}


def key_secret_namespaces(config: AmbassadorConfig, upstream: Upstream) -> list[str]:
    """Where a key Secret is: Langflow's namespace (the shared ambassador), then each sidecar namespace."""
    return [upstream.namespace, *config.sidecar_namespaces]


def key_role_manifest(namespace: str, objects: Objects, *, rolls_deployment: bool = False) -> dict[str, Any]:
    """Read and patch one Secret, by name; in Langflow's namespace also the shared ambassador's Deployment
    (to roll its pods onto a new key); nothing else."""
    rules = [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [key_secret_name(objects.app)],
              "verbs": ["get", "patch"]}]
    if rolls_deployment:
        rules.append({"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": [name(objects.app)],
                      "verbs": ["get", "patch"]})
    return {"metadata": objects.metadata(namespace, key_job_name(objects.app)), "rules": rules}


def key_role_binding_manifest(namespace: str, upstream: Upstream, objects: Objects) -> dict[str, Any]:
    return {"metadata": objects.metadata(namespace, key_job_name(objects.app)),
            "role_ref": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": key_job_name(objects.app)},
            "subjects": [{"kind": "ServiceAccount", "name": key_job_name(objects.app),
                          "namespace": upstream.namespace}]}


def key_service_account_manifest(upstream: Upstream, objects: Objects) -> dict[str, Any]:
    # The token is mounted only where it is needed: in the key Job's pod, which asks for it.
    return {"metadata": objects.metadata(upstream.namespace, key_job_name(objects.app)),
            "automount_service_account_token": False}


def key_job_revision(config: AmbassadorConfig, upstream: Upstream, scripts: dict[str, str], secret_uids: Any) -> str:
    """A new Job when the scripts, the Secrets (a re-created one is empty) or where they are change."""
    text = json.dumps([scripts, key_secret_namespaces(config, upstream), secret_uids, upstream.image], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def key_job_manifest(config: AmbassadorConfig, upstream: Upstream, objects: Objects, scripts_config_map: Any,
                     credentials_secret: Any, revision: str) -> dict[str, Any]:
    """One try, against Langflow's Service: a failure fails `pulumi up` with the script's own message."""
    app = upstream.app
    env = [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}]
    if upstream.superuser is not None:
        env += [{"name": "LANGFLOW_SUPERUSER", "value": upstream.superuser},
                {"name": "LANGFLOW_SUPERUSER_PASSWORD", "valueFrom": {"secretKeyRef": {
                    "name": credentials_secret, "key": "LANGFLOW_SUPERUSER_PASSWORD"}}}]
    secrets = [arg for ns in key_secret_namespaces(config, upstream) for arg in ("--secret", f"{ns}/{key_secret_name(app)}")]
    job_labels = {**labels(app, objects.labels), **key_job_selector_labels(app), "app.kubernetes.io/component": "ambassador-key"}
    pod = {
        "restartPolicy": "Never",
        "serviceAccountName": key_job_name(app),
        "automountServiceAccountToken": True,  # the one pod that talks to the Kubernetes API
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 0,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "ambassador-key",
            "image": upstream.image,
            "imagePullPolicy": upstream.pull_policy,
            # A new key rolls the shared ambassador's pods: they read it once, at start (sidecars roll with
            # their client's pods).
            "command": ["python", f"{KEY_JOB_MOUNT}/{KEY_SCRIPT}", "--url", upstream.base_url, *secrets,
                        "--deployment", f"{upstream.namespace}/{name(app)}",
                        "--wait-seconds", str(KEY_WAIT_SECONDS)],
            "env": env,
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "volumeMounts": [{"name": "scripts", "mountPath": KEY_JOB_MOUNT, "readOnly": True}],
        }],
        "volumes": [{"name": "scripts", "configMap": {"name": scripts_config_map}}],
    }
    if upstream.pull_secrets:
        pod["imagePullSecrets"] = [{"name": n} for n in upstream.pull_secrets]
    return {
        "metadata": objects.metadata(upstream.namespace, f"{key_job_name(app)}-{revision[:10]}", object_labels=job_labels,
                                     image=upstream.image),
        "spec": {"backoffLimit": 0, "activeDeadlineSeconds": 2 * KEY_WAIT_SECONDS,
                 "template": {"metadata": {"labels": job_labels}, "spec": pod}},
    }
