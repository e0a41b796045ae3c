"""What the objects of every component share: their metadata, and the annotations the platform reads."""

from __future__ import annotations

from typing import Any, Optional

# The full image reference a workload runs (a label value, 63 characters, cannot always hold it):
# what `kubectl get -o yaml` shows an operator, and what the release record says.
IMAGE_ANNOTATION = "langflow.org/image"
# On pod templates that read the database URL: its digest changes with the URL, so a new password rolls them.
DATABASE_URL_DIGEST_ANNOTATION = "langflow.org/database-url-sha256"


def object_metadata(namespace: str, labels: dict[str, str], annotations: dict[str, str],
                    name: Optional[str] = None, *, image: Optional[str] = None, **extra: Any) -> dict[str, Any]:
    """Metadata of one object. `name=None` leaves naming to Pulumi (a new name on every replacement);
    `image` marks a workload with the image it runs."""
    out: dict[str, Any] = {"namespace": namespace, "labels": dict(labels)}
    if name is not None:
        out["name"] = name
    annotations = {**annotations, **({IMAGE_ANNOTATION: image} if image else {})}
    if annotations:
        out["annotations"] = annotations
    out.update(extra)
    return out


# pulumi-kubernetes waits for a Service until its Endpoints have stayed unchanged for 10 s (its
# await/service.go), on every create: that alone made an install 10 s slower than Helm's. A Service here is
# ready when its workload is, and each workload has its own await (its rollout, its pods' readiness probes);
# the Service selects exactly those pods (tests check each selector against its pod template). A
# LoadBalancer keeps the await: it also waits for the load balancer's address.
SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait"


def service(metadata: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """A Service's keyword arguments, without the provider's endpoint-settling wait (above)."""
    if spec.get("type") == "LoadBalancer":
        return {"metadata": metadata, "spec": spec}
    annotations = {**metadata.get("annotations", {}), SKIP_AWAIT_ANNOTATION: "true"}
    return {"metadata": {**metadata, "annotations": annotations}, "spec": spec}


def disruption_budget(metadata: dict[str, Any], selector: dict[str, str]) -> dict[str, Any]:
    """A PodDisruptionBudget for a workload of several replicas: node drains take one pod at a time."""
    return {"metadata": metadata, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(selector)}}}


def scrape_annotations(port: int, path: str = "/metrics") -> dict[str, str]:
    """The common scrape annotations, read by Prometheus' kubernetes_sd configs without the operator."""
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": path}


def pod_monitor(metadata: dict[str, Any], selector: dict[str, str], port: str, path: str = "/metrics") -> dict[str, Any]:
    """The Prometheus operator's PodMonitor for one workload's metrics port (keyword arguments of CustomResource)."""
    return {"api_version": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": metadata,
            "spec": {"selector": {"matchLabels": dict(selector)}, "podMetricsEndpoints": [{"port": port, "path": path}]}}
