"""Decisions for the edge, as plain data: the Ingress, oauth2-proxy, and Dex's OAuth2Client.

People come in through the Ingress; with single sign-on it sends them to
oauth2-proxy, which signs them in with the platform's Dex and passes them on to
Langflow. API clients with an API key take the API paths straight to Langflow.
"""

from __future__ import annotations

import base64
import struct
from typing import Any, Optional

from components.common import disruption_budget, object_metadata, service
from settings.edge import IngressConfig, SSOConfig

OAUTH2_PROXY_PORT = 4180
# oauth2-proxy's own paths.
CALLBACK_PATH = "/oauth2/callback"
SIGN_OUT_PATH = "/oauth2/sign_out"
CLIENT_SECRET_KEY = "client-secret"
COOKIE_SECRET_KEY = "cookie-secret"
# oauth2-proxy's image runs as this non-root user (distroless "nonroot").
OAUTH2_PROXY_UID = 65532
# The FNV-1 64-bit hash of nothing: what Go's fnv.New64().Sum(b) appends to b.
_FNV64_OFFSET_BASIS = 0xCBF29CE484222325


def dex_object_name(client_id: str) -> str:
    """The name Dex's Kubernetes storage gives (and looks up) an OAuth2Client: storage/kubernetes `idToName`.

    Dex encodes `hash.Sum([]byte(id))` with fnv.New64(): Sum *appends* the hash of the (empty) input to the
    id's bytes, so the name is the id itself followed by FNV-1's offset basis, in lowercase base32 without
    padding.
    """
    raw = client_id.encode() + struct.pack(">Q", _FNV64_OFFSET_BASIS)
    return base64.b32encode(raw).decode().lower().rstrip("=")


def oauth2_proxy_name(app: str) -> str:
    """The Deployment, Service and Secret: `<app>-oauth2-proxy`, as the chart named its Service."""
    return f"{app}-oauth2-proxy"


def callback_urls(ingress: IngressConfig) -> list[str]:
    """One exact redirect URI per host: Dex matches them exactly, never a wildcard."""
    return [f"https://{h.host}{CALLBACK_PATH}" for h in ingress.hosts]


def cors_origins(ingress: IngressConfig) -> str:
    """LANGFLOW_CORS_ORIGINS: the ingress hosts, or nothing without an ingress (never every origin)."""
    if not ingress.enabled:
        return ""
    scheme = "http" if ingress.tls.mode == "none" else "https"
    return ",".join(f"{scheme}://{h.host}" for h in ingress.hosts)


def labels(app: str, base: dict[str, str]) -> dict[str, str]:
    return {**base, **selector_labels(app), "app.kubernetes.io/component": "sso",
            "app.kubernetes.io/part-of": "langflow", "app.kubernetes.io/managed-by": "pulumi"}


def selector_labels(app: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "oauth2-proxy", "app.kubernetes.io/instance": oauth2_proxy_name(app)}


# --- oauth2-proxy ---------------------------------------------------------------------------

def oauth2_proxy_args(sso: SSOConfig, ingress: IngressConfig, upstream: str) -> list[str]:
    """The flags, as oauth2-proxy reads them; the two secrets come from env (the Secret)."""
    hosts = [h.host for h in ingress.hosts]
    proxy = sso.oauth2_proxy
    args = [
        "--provider=oidc",
        f"--oidc-issuer-url={sso.issuer_url}",
        f"--client-id={sso.client_id}",
        f"--upstream={upstream}",
        f"--http-address=0.0.0.0:{OAUTH2_PROXY_PORT}",
        # Behind the ingress: trust its X-Forwarded-* headers for the host and the client address.
        "--reverse-proxy=true",
        "--skip-provider-button=true",
        "--code-challenge-method=S256",
        # Not a consent screen at every sign-in (oauth2-proxy asks Dex to force one by default).
        "--approval-prompt=auto",
        "--cookie-secure=true",
        "--cookie-samesite=lax",
        "--scope=openid email profile",
        f"--upstream-timeout={proxy.upstream_timeout_seconds}s",
        "--silence-ping-logging=true",
    ]
    if len(hosts) == 1:
        args.append(f"--redirect-url=https://{hosts[0]}{CALLBACK_PATH}")
    # With several hosts the callback follows the request's host; only these may be redirected to.
    args += [f"--whitelist-domain={host}" for host in hosts]
    args += [f"--email-domain={domain}" for domain in proxy.email_domains]
    return args


def oauth2_proxy_env(secret_name: str) -> list[dict[str, Any]]:
    def from_secret(name: str, key: str) -> dict[str, Any]:
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}

    return [from_secret("OAUTH2_PROXY_CLIENT_SECRET", CLIENT_SECRET_KEY),
            from_secret("OAUTH2_PROXY_COOKIE_SECRET", COOKIE_SECRET_KEY)]


def oauth2_proxy_deployment_manifest(app: str, namespace: str, sso: SSOConfig, ingress: IngressConfig,
                                     upstream: str, registry: Optional[str], base_labels: dict[str, str],
                                     annotations: dict[str, str]) -> dict[str, Any]:
    proxy = sso.oauth2_proxy
    name = oauth2_proxy_name(app)

    def probe(path: str, period: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "timeoutSeconds": 3,
                "failureThreshold": 3}

    container = {
        "name": "oauth2-proxy",
        "image": proxy.image.reference(registry),
        "args": oauth2_proxy_args(sso, ingress, upstream),
        "env": oauth2_proxy_env(name),
        "ports": [{"name": "http", "containerPort": OAUTH2_PROXY_PORT, "protocol": "TCP"}],
        "livenessProbe": probe("/ping", 20),
        "readinessProbe": probe("/ready", 5),
        "resources": proxy.resources,
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    pod_labels = {**labels(app, base_labels), "app.kubernetes.io/version": proxy.image.tag}
    return {
        "metadata": object_metadata(namespace, labels(app, base_labels), annotations, name,
                                    image=proxy.image.reference(registry)),
        "spec": {
            "replicas": proxy.replicas,
            "selector": {"matchLabels": selector_labels(app)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": OAUTH2_PROXY_UID,
                                        "runAsGroup": OAUTH2_PROXY_UID, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                },
            },
        },
    }


def oauth2_proxy_service_manifest(app: str, namespace: str, base_labels: dict[str, str],
                                  annotations: dict[str, str]) -> dict[str, Any]:
    return service(object_metadata(namespace, labels(app, base_labels), annotations, oauth2_proxy_name(app)),
                   {"type": "ClusterIP", "selector": selector_labels(app),
                    "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]})


def pdb_manifest(app: str, namespace: str, base_labels: dict[str, str], annotations: dict[str, str]) -> dict[str, Any]:
    return disruption_budget(object_metadata(namespace, labels(app, base_labels), annotations, oauth2_proxy_name(app)),
                             selector_labels(app))


# --- Dex --------------------------------------------------------------------------------------

def oauth2_client_object(sso: SSOConfig, ingress: IngressConfig, secret: Any) -> dict[str, Any]:
    """Dex's OAuth2Client: its fields sit at the top level, its name is the one Dex derives from the id."""
    return {
        "apiVersion": "dex.coreos.com/v1",
        "kind": "OAuth2Client",
        "metadata": {"name": dex_object_name(sso.client_id), "namespace": sso.dex.namespace,
                     "labels": {"app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/part-of": "langflow"}},
        "id": sso.client_id,
        "name": sso.display_name,
        "secret": secret,
        "redirectURIs": callback_urls(ingress),
    }


# --- the Ingress ------------------------------------------------------------------------------

def ingress_annotations(ingress: IngressConfig, upload_limit_mb: int, sso: bool) -> dict[str, str]:
    out = {
        # Langflow accepts uploads up to runtime.max_file_size_upload_mb: so must the ingress (default 1m).
        "nginx.ingress.kubernetes.io/proxy-body-size": f"{upload_limit_mb}m",
        # Streamed answers and long flow runs outlast ingress-nginx's 60 s default.
        "nginx.ingress.kubernetes.io/proxy-read-timeout": str(ingress.timeout_seconds),
        "nginx.ingress.kubernetes.io/proxy-send-timeout": str(ingress.timeout_seconds),
    }
    if sso:
        # oauth2-proxy's session cookies can be large; nginx's default buffer cuts them.
        out["nginx.ingress.kubernetes.io/proxy-buffer-size"] = "16k"
    if ingress.tls.mode == "cert-manager":
        if ingress.tls.cluster_issuer:
            out["cert-manager.io/cluster-issuer"] = ingress.tls.cluster_issuer
        else:
            out["cert-manager.io/issuer"] = ingress.tls.issuer
    return {**out, **ingress.annotations}


def ingress_manifest(app: str, namespace: str, ingress: IngressConfig, *, upload_limit_mb: int,
                     front: tuple[str, int], api: Optional[tuple[str, int]], api_paths: list[str],
                     base_labels: dict[str, str], annotations: dict[str, str]) -> dict[str, Any]:
    """`front`: where people go (oauth2-proxy with SSO, else Langflow); `api`: Langflow, for the API paths."""

    def backend(service: tuple[str, int]) -> dict[str, Any]:
        return {"service": {"name": service[0], "port": {"number": service[1]}}}

    rules = []
    for host in ingress.hosts:
        paths = [{"path": p.path, "pathType": p.path_type, "backend": backend(front)} for p in host.paths]
        if api is not None:
            paths = [{"path": p, "pathType": "Prefix", "backend": backend(api)} for p in api_paths] + paths
        rules.append({"host": host.host, "http": {"paths": paths}})
    spec: dict[str, Any] = {"ingressClassName": ingress.class_name, "rules": rules}
    if ingress.tls.mode != "none":
        spec["tls"] = [{"hosts": [h.host for h in ingress.hosts], "secretName": ingress.tls.secret_name}]
    meta = object_metadata(namespace, {**base_labels, "app.kubernetes.io/name": "langflow", "app.kubernetes.io/instance": app,
                                 "app.kubernetes.io/part-of": "langflow", "app.kubernetes.io/managed-by": "pulumi"},
                     {**annotations, **ingress_annotations(ingress, upload_limit_mb, api is not None)}, app)
    return {"metadata": meta, "spec": spec}
