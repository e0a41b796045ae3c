"""What already exists in the cluster, read before anything is registered.

* whether the stack's namespace exists, and whether this stack created it. The
  Kubernetes provider (4.25, with server-side apply) adopts an object that
  already exists instead of failing, so without this check
  `create_namespace: true` would relabel and protect a namespace that belongs
  to someone else;
* whether the Secrets the config references exist, with the keys it names
  (otherwise pods fail later with CreateContainerConfigError);
* which PostgreSQL major version initialised the in-cluster database volume:
  another major cannot read it, so a major change is refused.

The check is read-only. When the cluster cannot be reached (a preview
without credentials), it is skipped with a warning; `up` would fail anyway.
"""

from __future__ import annotations

import json
from typing import Any, Optional, Protocol

from settings.database import MAJOR_ANNOTATION, data_claim_name

# Recorded on the namespace this stack creates: `<project>/<stack>`.
STACK_ANNOTATION = "langflow.org/stack"
# What every namespace this program created carried before it recorded its stack.
_CREATED_BY_PROGRAM = {"app.kubernetes.io/part-of": "langflow", "app.kubernetes.io/managed-by": "pulumi"}


class ClusterUnavailable(Exception):
    """The cluster could not be asked (no credentials, not reachable)."""


class ClusterView(Protocol):
    """Each method raises ClusterUnavailable when the cluster cannot be asked."""

    def namespace(self, name: str) -> Optional[dict[str, Any]]:
        """The namespace's metadata (`labels`, `annotations`), or None when it does not exist."""

    def secret_keys(self, namespace: str, name: str) -> Optional[set[str]]:
        """The keys of a Secret (never its values), or None when it does not exist."""

    def claim_annotations(self, namespace: str, name: str) -> Optional[dict[str, str]]:
        """A PersistentVolumeClaim's annotations, or None when it does not exist."""

    def has_crd(self, name: str) -> bool:
        """Whether the cluster has the CustomResourceDefinition `name` (e.g. podmonitors.monitoring.coreos.com)."""


def created_by_stack(metadata: dict[str, Any], stack: str) -> bool:
    annotations = metadata.get("annotations") or {}
    if STACK_ANNOTATION in annotations:
        return annotations[STACK_ANNOTATION] == stack
    labels = metadata.get("labels") or {}
    return all(labels.get(k) == v for k, v in _CREATED_BY_PROGRAM.items())


def referenced_secrets(config: Any) -> list[tuple[str, str, Optional[str]]]:
    """(config key, Secret name, key or None) for every Secret the stack reads but does not create."""
    out: list[tuple[str, str, Optional[str]]] = []
    database = config.database
    if database.type == "url":
        out.append(("database.url_secret", database.url_secret.name, database.url_secret.key))
    external = database.postgresql.external if database.type == "postgresql" else None
    if external is not None:
        if external.password_secret is not None:
            out.append(("database.postgresql.external.password_secret", external.password_secret.name,
                        external.password_secret.key))
        if external.ca_secret is not None:
            out.append(("database.postgresql.external.ca_secret", external.ca_secret.name, external.ca_secret.key))
        if external.bootstrap is not None:
            admin = external.bootstrap.admin_secret
            for key in (admin.user_key, admin.password_key):
                out.append(("database.postgresql.external.bootstrap.admin_secret", admin.name, key))
    for index, name in enumerate(config.image.pull_secrets):
        out.append((f"image.pull_secrets[{index}]", name, None))
    for index, env in enumerate(config.extra_env):
        ref = (env.value_from or {}).get("secretKeyRef")
        if ref and not ref.get("optional"):
            out.append((f"extra_env[{index}].valueFrom.secretKeyRef", ref["name"], ref["key"]))
    for index, volume in enumerate(config.extra_volumes):
        secret = volume.get("secret")
        if secret and not secret.get("optional"):
            out.append((f"extra_volumes[{index}].secret.secretName", secret["secretName"], None))
    return out


POD_MONITOR_CRD = "podmonitors.monitoring.coreos.com"


def pod_monitors_wanted(metrics: Any, cluster: Optional[ClusterView]) -> tuple[bool, list[str]]:
    """(PodMonitors or not, warnings): `metrics.scrape` auto asks the cluster for the operator's CRD."""
    if not metrics.enabled or metrics.scrape == "annotations":
        return False, []
    if metrics.scrape == "pod-monitor":
        return True, []
    if cluster is None:
        return False, []
    try:
        return cluster.has_crd(POD_MONITOR_CRD), []
    except ClusterUnavailable as error:
        return False, [f"metrics.scrape is auto but the cluster could not be asked for the {POD_MONITOR_CRD} CRD "
                       f"({error}): scraping by annotations only; set metrics.scrape to pod-monitor or annotations"]


def cluster_problems(config: Any, cluster: ClusterView, stack: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(problems, warnings) about what the stack expects to find in the cluster."""
    namespace = config.namespace
    try:
        metadata = cluster.namespace(namespace)
        problems = _namespace_problems(namespace, config.create_namespace, metadata, stack)
        if metadata is not None:
            problems += _secret_problems(config, cluster)
            problems += _major_problems(config, cluster)
    except ClusterUnavailable as error:
        return [], [f"could not read the cluster ({error}); the checks of the namespace, the Secrets the stack "
                    "references and the database volume's PostgreSQL version were skipped"]
    return problems, []


def _namespace_problems(namespace: str, create: bool, metadata: Optional[dict[str, Any]], stack: str) -> list[tuple[str, str]]:
    if create and metadata is not None and not created_by_stack(metadata, stack):
        return [("namespace", f"namespace {namespace!r} already exists and was not created by this stack "
                 f"({stack}); the program would relabel and protect it. Set create_namespace: false to deploy "
                 "into it as it is, or choose a new namespace")]
    if not create and metadata is None:
        return [("create_namespace", f"false, but namespace {namespace!r} does not exist; create it first, or set "
                 "create_namespace: true")]
    return []


def _secret_problems(config: Any, cluster: ClusterView) -> list[tuple[str, str]]:
    problems = []
    for key_path, name, key in referenced_secrets(config):
        keys = cluster.secret_keys(config.namespace, name)
        if keys is None:
            problems.append((key_path, f"Secret {name!r} does not exist in namespace {config.namespace!r}; create it "
                             f"first (kubectl -n {config.namespace} create secret generic {name} ...)"))
        elif key is not None and key not in keys:
            problems.append((key_path, f"Secret {name!r} has no key {key!r} (it has: {', '.join(sorted(keys)) or 'none'}); "
                             "name the right key or add it to the Secret"))
    return problems


def _major_problems(config: Any, cluster: ClusterView) -> list[tuple[str, str]]:
    database = config.database
    if database.type != "postgresql" or database.postgresql.mode != "in-cluster":
        return []
    annotations = cluster.claim_annotations(config.namespace, data_claim_name(config.name))
    recorded = (annotations or {}).get(MAJOR_ANNOTATION)
    wanted = database.postgresql.image.major
    if recorded is not None and recorded != str(wanted):
        return [("database.postgresql.image.tag", f"PostgreSQL {wanted} cannot open the database volume, which "
                 f"PostgreSQL {recorded} initialised; keep a {recorded}.x tag, and move to {wanted} with the README's "
                 "procedure \"Upgrading PostgreSQL to a new major version\" (dump, new volume, restore)")]
    return []


def api_client(kubeconfig: Optional[str] = None, context: Optional[str] = None):
    """The official client for the provider's settings: `kubeconfig` a path or the file's content;
    unset, KUBECONFIG or ~/.kube/config, as the provider reads them."""
    from kubernetes import config

    try:
        if kubeconfig and kubeconfig.lstrip().startswith(("{", "apiVersion", "kind", "clusters")):
            import yaml

            document = json.loads(kubeconfig) if kubeconfig.lstrip().startswith("{") else yaml.safe_load(kubeconfig)
            return config.new_client_from_config_dict(document, context=context)
        return config.new_client_from_config(config_file=kubeconfig, context=context)
    except Exception as error:  # noqa: BLE001 - any kubeconfig problem means: cannot ask
        raise ClusterUnavailable(f"no usable kubeconfig: {error}") from None


class KubeconfigCluster:
    """The cluster the Kubernetes provider deploys to, asked with the official client.

    `kubeconfig` and `context` are the provider's settings (`kubernetes:kubeconfig`,
    a path or the file's content, and `kubernetes:context`); unset, the client reads
    KUBECONFIG or ~/.kube/config as the provider does.
    """

    def __init__(self, kubeconfig: Optional[str] = None, context: Optional[str] = None, timeout: float = 10):
        self.kubeconfig, self.context, self.timeout = kubeconfig, context, timeout

    def _api(self, kind: str):
        from kubernetes import client

        return getattr(client, kind)(api_client(self.kubeconfig, self.context))

    def _read(self, method: str, *args: Any, api: str = "CoreV1Api") -> Any:
        """One read; None when the object does not exist."""
        from kubernetes.client.exceptions import ApiException

        api = self._api(api)
        try:
            return getattr(api, method)(*args, _request_timeout=self.timeout)
        except ApiException as error:
            if error.status == 404:
                return None
            raise ClusterUnavailable(f"HTTP {error.status} {error.reason}") from None
        except Exception as error:  # noqa: BLE001 - connection errors come in many types
            raise ClusterUnavailable(str(error).splitlines()[0][:200]) from None
        finally:
            api.api_client.close()

    def namespace(self, name: str) -> Optional[dict[str, Any]]:
        found = self._read("read_namespace", name)
        return None if found is None else \
            {"labels": found.metadata.labels or {}, "annotations": found.metadata.annotations or {}}

    def secret_keys(self, namespace: str, name: str) -> Optional[set[str]]:
        found = self._read("read_namespaced_secret", name, namespace)
        return None if found is None else set(found.data or {}) | set(found.string_data or {})

    def claim_annotations(self, namespace: str, name: str) -> Optional[dict[str, str]]:
        found = self._read("read_namespaced_persistent_volume_claim", name, namespace)
        return None if found is None else dict(found.metadata.annotations or {})

    def has_crd(self, name: str) -> bool:
        return self._read("read_custom_resource_definition", name, api="ApiextensionsV1Api") is not None
