"""What already exists in the cluster, read before anything is registered.

Only one fact today: whether the stack's namespace exists, and whether this
stack created it. The Kubernetes provider (4.25, with server-side apply)
adopts an object that already exists instead of failing, so without this
check `create_namespace: true` would relabel and protect a namespace that
belongs to someone else.

The check is read-only. When the cluster cannot be reached (a preview
without credentials), it is skipped with a warning; `up` would fail anyway.
"""

from __future__ import annotations

import json
from typing import Any, Optional, Protocol

# Recorded on the namespace this stack creates: `<project>/<stack>`.
STACK_ANNOTATION = "langflow.org/stack"
# What every namespace this program created carried before it recorded its stack.
_CREATED_BY_PROGRAM = {"app.kubernetes.io/part-of": "langflow", "app.kubernetes.io/managed-by": "pulumi"}


class ClusterUnavailable(Exception):
    """The cluster could not be asked (no credentials, not reachable)."""


class ClusterView(Protocol):
    def namespace(self, name: str) -> Optional[dict[str, Any]]:
        """The namespace's metadata (`labels`, `annotations`), or None when it does not exist.

        Raises ClusterUnavailable when the cluster cannot be asked.
        """


def created_by_stack(metadata: dict[str, Any], stack: str) -> bool:
    annotations = metadata.get("annotations") or {}
    if STACK_ANNOTATION in annotations:
        return annotations[STACK_ANNOTATION] == stack
    labels = metadata.get("labels") or {}
    return all(labels.get(k) == v for k, v in _CREATED_BY_PROGRAM.items())


def cluster_problems(
    namespace: str, create: bool, cluster: ClusterView, stack: str
) -> tuple[list[tuple[str, str]], list[str]]:
    """(problems, warnings) about the stack's namespace as the cluster has it."""
    try:
        metadata = cluster.namespace(namespace)
    except ClusterUnavailable as error:
        return [], [f"could not check namespace {namespace!r} in the cluster ({error}); the check that "
                    "create_namespace never adopts someone else's namespace was skipped"]
    if create and metadata is not None and not created_by_stack(metadata, stack):
        return [("namespace", f"namespace {namespace!r} already exists and was not created by this stack "
                 f"({stack}); the program would relabel and protect it. Set create_namespace: false to deploy "
                 "into it as it is, or choose a new namespace")], []
    if not create and metadata is None:
        return [("create_namespace", f"false, but namespace {namespace!r} does not exist; create it first, or set "
                 "create_namespace: true")], []
    return [], []


class KubeconfigCluster:
    """The cluster the Kubernetes provider deploys to, asked with the official client.

    `kubeconfig` and `context` are the provider's settings (`kubernetes:kubeconfig`,
    a path or the file's content, and `kubernetes:context`); unset, the client reads
    KUBECONFIG or ~/.kube/config as the provider does.
    """

    def __init__(self, kubeconfig: Optional[str] = None, context: Optional[str] = None, timeout: float = 10):
        self.kubeconfig, self.context, self.timeout = kubeconfig, context, timeout

    def _api(self):
        from kubernetes import client, config

        try:
            if self.kubeconfig and self.kubeconfig.lstrip().startswith(("{", "apiVersion", "kind", "clusters")):
                import yaml

                document = json.loads(self.kubeconfig) if self.kubeconfig.lstrip().startswith("{") \
                    else yaml.safe_load(self.kubeconfig)
                api_client = config.new_client_from_config_dict(document, context=self.context)
            else:
                api_client = config.new_client_from_config(config_file=self.kubeconfig, context=self.context)
        except Exception as error:  # noqa: BLE001 - any kubeconfig problem means: cannot ask
            raise ClusterUnavailable(f"no usable kubeconfig: {error}") from None
        return client.CoreV1Api(api_client)

    def namespace(self, name: str) -> Optional[dict[str, Any]]:
        from kubernetes.client.exceptions import ApiException

        api = self._api()
        try:
            found = api.read_namespace(name, _request_timeout=self.timeout)
        except ApiException as error:
            if error.status == 404:
                return None
            raise ClusterUnavailable(f"HTTP {error.status} {error.reason}") from None
        except Exception as error:  # noqa: BLE001 - connection errors come in many types
            raise ClusterUnavailable(str(error).splitlines()[0][:200]) from None
        finally:
            api.api_client.close()
        return {"labels": found.metadata.labels or {}, "annotations": found.metadata.annotations or {}}
