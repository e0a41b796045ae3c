"""Decisions for the edge, as plain data: the Ingress, oauth2-proxy, and Dex's OAuth2Client.

People come in through the Ingress; with single sign-on it sends every path to
oauth2-proxy, which signs them in with the platform's Dex and passes them on to
Langflow. On the API paths (`sso.api_paths`) oauth2-proxy signs no one in and
Langflow's API-key check guards them. Sign-ins live in a Redis beside
oauth2-proxy (`sso.oauth2_proxy.session_store`), so signing out ends them.
"""

from __future__ import annotations

import base64
import json
import struct
from decimal import Decimal
from typing import Any, Optional

from components.common import disruption_budget, object_metadata, service
from settings import kube
from settings.base import TrustedCA
from settings.edge import CALLBACK_PATH, IngressConfig, RedisConfig, SSOConfig, jwks_url
from settings.managed import TRUSTED_CA_VOLUME

OAUTH2_PROXY_PORT = 4180
# oauth2-proxy's own paths.
SIGN_OUT_PATH = "/oauth2/sign_out"
CLIENT_SECRET_KEY = "client-secret"
COOKIE_SECRET_KEY = "cookie-secret"
# The session store: Redis, its password (the Secret's key, and oauth2-proxy's env), and its config file.
REDIS_PORT = 6379
REDIS_PASSWORD_KEY = "password"
REDIS_CONFIG_KEY = "redis.conf"
REDIS_CONFIG_DIR = "/etc/redis"
REDIS_PASSWORD_ENV = "OAUTH2_PROXY_REDIS_PASSWORD"
# The official image's `redis` user and group (its Dockerfile: useradd -u 999), and its working folder.
REDIS_UID = 999
REDIS_DATA_DIR = "/data"
# Redis evicts (signs out) the sessions closest to expiry before its container meets the memory limit.
REDIS_MEMORY_SHARE = 0.75
# oauth2-proxy's image runs as this non-root user (distroless "nonroot").
OAUTH2_PROXY_UID = 65532
# Where oauth2-proxy finds the platform's CA bundle (trusted_ca).
OAUTH2_PROXY_CA_DIR = "/etc/oauth2-proxy/trusted-ca"
# The sign-in ends this long before Dex's ID token expires: Langflow refuses an expired token (no leeway).
SESSION_MARGIN_MINUTES = 5
# What Langflow records as the provider of the users it creates from SSO tokens.
EXTERNAL_AUTH_PROVIDER = "dex"
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

def go_quote_meta(text: str) -> str:
    """Go's regexp.QuoteMeta: every regexp metacharacter escaped, so the text matches itself (RE2 syntax)."""
    return "".join(f"\\{c}" if c in "\\.+*?()|[]{}^$" else c for c in text)


def skip_auth_route(path: str) -> str:
    """oauth2-proxy's `--skip-auth-route` for one API path (a prefix): the path anchored at the start, its
    metacharacters escaped. oauth2-proxy splits a route at its first `=` or `!=` (`METHOD=regex`), so `=` is
    written `\\x3d`, which the regexp reads as `=`."""
    return "^" + go_quote_meta(path).replace("=", "\\x3d")


def oauth2_proxy_args(sso: SSOConfig, ingress: IngressConfig, upstream: str, *, per_user: bool = False,
                      trusted_ca: Optional[TrustedCA] = None, redis_url: Optional[str] = None) -> list[str]:
    """The flags, as oauth2-proxy reads them; the secrets come from env (the Secrets). `per_user`: Langflow
    gets each person's ID token and makes them their own user. `redis_url`: the session store's address
    (required with `session_store: redis`)."""
    hosts = [h.host for h in ingress.hosts]
    proxy = sso.oauth2_proxy
    args = [
        "--provider=oidc",
        f"--oidc-issuer-url={sso.issuer_url}",
        f"--client-id={sso.client_id}",
        f"--upstream={upstream}",
        f"--http-address=0.0.0.0:{OAUTH2_PROXY_PORT}",
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
    args += forwarded_header_args(sso)
    # The API paths: no sign-in, Langflow's API-key check guards them. oauth2-proxy still strips the headers it
    # would set itself (--skip-auth-strip-headers, on by default), a client's Authorization among them per-user.
    args += [f"--skip-auth-route={skip_auth_route(path)}" for path in sso.api_paths]
    args += session_store_args(sso, redis_url)
    if per_user:
        args += [
            # `Authorization: Bearer <Dex ID token>` on every request to Langflow (a client's own is stripped).
            "--pass-authorization-header=true",
            # Langflow keeps no session of its own for these users: the sign-in must end before the token.
            f"--cookie-expire={sso.dex.id_token_expiry_minutes - SESSION_MARGIN_MINUTES}m",
        ]
    if trusted_ca is not None:
        args += [f"--provider-ca-file={OAUTH2_PROXY_CA_DIR}/{trusted_ca.key}", "--use-system-trust-store=true"]
    return args


def forwarded_header_args(sso: SSOConfig) -> list[str]:
    """Whose X-Forwarded-* headers oauth2-proxy believes. It needs none: the redirect URL is fixed (or follows
    the Host header, which the ingress passes on), cookies are secure whatever the scheme says. Without
    `--reverse-proxy` it uses none of them, from anyone (oauth2-proxy's RequestScope.CanTrustForwardedHeaders);
    with `trusted_proxy_cidrs` it uses them only from those addresses (`--trusted-proxy-ip`, never
    `--trusted-ip`, which lets an address past the sign-in)."""
    cidrs = sso.oauth2_proxy.trusted_proxy_cidrs
    if not cidrs:
        return []
    return ["--reverse-proxy=true", *(f"--trusted-proxy-ip={cidr}" for cidr in cidrs)]


def session_store_args(sso: SSOConfig, redis_url: Optional[str]) -> list[str]:
    """Sessions in Redis: the cookie holds a ticket, signing out deletes the session (its password: env)."""
    if sso.oauth2_proxy.session_store != "redis":
        return []
    if redis_url is None:
        raise ValueError("session_store is redis: the session store's redis_url is required")
    return ["--session-store-type=redis", f"--redis-connection-url={redis_url}"]


def trusted_ca_volume(trusted_ca: TrustedCA) -> dict[str, Any]:
    """The bundle's one key, as a read-only volume (a Secret's or a ConfigMap's), for Langflow and oauth2-proxy."""
    items = [{"key": trusted_ca.key, "path": trusted_ca.key}]
    if trusted_ca.secret is not None:
        return {"name": TRUSTED_CA_VOLUME, "secret": {"secretName": trusted_ca.secret, "items": items}}
    return {"name": TRUSTED_CA_VOLUME, "configMap": {"name": trusted_ca.config_map, "items": items}}


def trusted_ca_mount(folder: str) -> dict[str, Any]:
    return {"name": TRUSTED_CA_VOLUME, "mountPath": folder, "readOnly": True}


def external_auth_env(sso: SSOConfig) -> list[dict[str, Any]]:
    """Langflow's external authentication (1.11+): it verifies the ID token oauth2-proxy passes against Dex's
    keys, issuer and audience, and creates a user per person (`sub`) on first use."""
    identity, access = sso.identity, sso.identity.access
    # The access ceiling also gates SSO users' API keys: on without a claim, everyone's level is admin (no cap).
    ceiling = access.claim is not None or not identity.api_keys
    values = {
        "ENABLED": "true",
        "PROVIDER": EXTERNAL_AUTH_PROVIDER,
        "TOKEN_HEADER": "Authorization",
        # Spelled out: never trust a token without checking its signature.
        "TRUSTED_JWT_DECODE": "false",
        "JWKS_URL": jwks_url(sso.issuer_url),
        "ISSUER": sso.issuer_url,
        "AUDIENCE": sso.client_id,
        "ALGORITHMS": "RS256",  # what Dex signs with
        "USERNAME_CLAIM": identity.username_claim,
        "ACCESS_CEILING_ENABLED": "true" if ceiling else "false",
        "DISABLE_API_KEYS_FOR_EXTERNAL_USERS": "false" if identity.api_keys else "true",
    }
    if access.claim is not None:
        values.update(ACCESS_CLAIM=access.claim, ACCESS_CLAIM_MAPPING=json.dumps(access.levels, sort_keys=True),
                      DEFAULT_ACCESS_LEVEL=access.default_level)
    elif ceiling:
        values["DEFAULT_ACCESS_LEVEL"] = "admin"
    return [{"name": f"LANGFLOW_EXTERNAL_AUTH_{key}", "value": value} for key, value in values.items()]


def from_secret(name: str, secret_name: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}


def oauth2_proxy_env(secret_name: str, redis_secret: Optional[str] = None) -> list[dict[str, Any]]:
    """The client and cookie secrets; with the Redis session store, its password (from Redis' own Secret)."""
    env = [from_secret("OAUTH2_PROXY_CLIENT_SECRET", secret_name, CLIENT_SECRET_KEY),
           from_secret("OAUTH2_PROXY_COOKIE_SECRET", secret_name, COOKIE_SECRET_KEY)]
    if redis_secret is not None:
        env.append(from_secret(REDIS_PASSWORD_ENV, redis_secret, REDIS_PASSWORD_KEY))
    return env


def oauth2_proxy_deployment_manifest(app: str, namespace: str, sso: SSOConfig, ingress: IngressConfig,
                                     upstream: str, registry: Optional[str], base_labels: dict[str, str],
                                     annotations: dict[str, str], *, per_user: bool = False,
                                     trusted_ca: Optional[TrustedCA] = None) -> dict[str, Any]:
    proxy = sso.oauth2_proxy
    name = oauth2_proxy_name(app)
    redis = proxy.session_store == "redis"

    def probe(path: str, period: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "timeoutSeconds": 3,
                "failureThreshold": 3}

    container = {
        "name": "oauth2-proxy",
        "image": proxy.image.reference(registry),
        "args": oauth2_proxy_args(sso, ingress, upstream, per_user=per_user, trusted_ca=trusted_ca,
                                  redis_url=redis_url(app, namespace) if redis else None),
        "env": oauth2_proxy_env(name, redis_name(app) if redis else None),
        "ports": [{"name": "http", "containerPort": OAUTH2_PROXY_PORT, "protocol": "TCP"}],
        "livenessProbe": probe("/ping", 20),
        "readinessProbe": probe("/ready", 5),
        "resources": proxy.resources,
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    if trusted_ca is not None:
        container["volumeMounts"] = [trusted_ca_mount(OAUTH2_PROXY_CA_DIR)]
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
                    **({"volumes": [trusted_ca_volume(trusted_ca)]} if trusted_ca else {}),
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


# --- the session store: Redis ------------------------------------------------------------------

def redis_name(app: str) -> str:
    """The Deployment, Service and Secret of oauth2-proxy's session store."""
    return f"{oauth2_proxy_name(app)}-redis"


def redis_url(app: str, namespace: str) -> str:
    return f"redis://{redis_name(app)}.{namespace}.svc:{REDIS_PORT}"


def redis_selector_labels(app: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": redis_name(app)}


def redis_labels(app: str, base: dict[str, str]) -> dict[str, str]:
    return {**base, **redis_selector_labels(app), "app.kubernetes.io/component": "sso-session-store",
            "app.kubernetes.io/part-of": "langflow", "app.kubernetes.io/managed-by": "pulumi"}


def redis_config_file(password: str) -> str:
    """The one secret setting, as a file in the Secret (never in the pod spec or the process' arguments)."""
    return f"requirepass {password}\n"


def redis_args(redis: RedisConfig) -> list[str]:
    """redis-server's arguments: the password's file, then sessions in memory only (no snapshot, no append-only
    file: losing them only signs people out), and room for them within the container's memory limit."""
    args = ["redis-server", f"{REDIS_CONFIG_DIR}/{REDIS_CONFIG_KEY}", "--port", str(REDIS_PORT),
            "--save", "", "--appendonly", "no"]
    limit = redis.resources.get("limits", {}).get("memory")
    if limit is not None:
        # The sessions closest to their expiry go first (oauth2-proxy sets each one's expiry).
        args += ["--maxmemory", str(int(kube.parse_quantity(limit) * Decimal(str(REDIS_MEMORY_SHARE)))),
                 "--maxmemory-policy", "volatile-ttl"]
    return args


def redis_probe_command(port: int = REDIS_PORT) -> list[str]:
    """Ready when Redis answers PONG to its password (REDISCLI_AUTH; redis-cli exits 0 even on NOAUTH)."""
    return ["sh", "-c", f'test "$(redis-cli -h 127.0.0.1 -p {port} ping)" = PONG']


def redis_deployment_manifest(app: str, namespace: str, redis: RedisConfig, registry: Optional[str],
                              base_labels: dict[str, str], annotations: dict[str, str]) -> dict[str, Any]:
    name = redis_name(app)
    image = redis.image.reference(registry)
    container = {
        "name": "redis",
        "image": image,
        "args": redis_args(redis),
        "env": [from_secret("REDISCLI_AUTH", name, REDIS_PASSWORD_KEY)],
        "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 20, "timeoutSeconds": 3,
                          "failureThreshold": 3},
        "readinessProbe": {"exec": {"command": redis_probe_command()}, "periodSeconds": 5, "timeoutSeconds": 3,
                           "failureThreshold": 3},
        "resources": redis.resources,
        "volumeMounts": [{"name": "config", "mountPath": REDIS_CONFIG_DIR, "readOnly": True},
                         {"name": "data", "mountPath": REDIS_DATA_DIR}],
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    return {
        "metadata": object_metadata(namespace, redis_labels(app, base_labels), annotations, name, image=image),
        "spec": {
            # One pod: sessions are not replicated, and a second Redis would not know the first one's.
            "replicas": 1,
            "selector": {"matchLabels": redis_selector_labels(app)},
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {"labels": {**redis_labels(app, base_labels), "app.kubernetes.io/version": redis.image.tag}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": REDIS_UID, "runAsGroup": REDIS_UID,
                                        "fsGroup": REDIS_UID, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "secret": {"secretName": name, "defaultMode": 0o440,
                                                      "items": [{"key": REDIS_CONFIG_KEY, "path": REDIS_CONFIG_KEY}]}},
                        # Nothing is written (no snapshots): Redis' working folder, on a read-only root.
                        {"name": "data", "emptyDir": {"sizeLimit": "16Mi"}},
                    ],
                },
            },
        },
    }


def redis_service_manifest(app: str, namespace: str, base_labels: dict[str, str],
                           annotations: dict[str, str]) -> dict[str, Any]:
    return service(object_metadata(namespace, redis_labels(app, base_labels), annotations, redis_name(app)),
                   {"type": "ClusterIP", "selector": redis_selector_labels(app),
                    "ports": [{"name": "redis", "port": REDIS_PORT, "targetPort": "redis", "protocol": "TCP"}]})


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
                     front: tuple[str, int], sso: bool, base_labels: dict[str, str],
                     annotations: dict[str, str]) -> dict[str, Any]:
    """Every path to `front`: oauth2-proxy with SSO (the API paths too: it lets them past the sign-in), else
    Langflow."""

    def backend(service: tuple[str, int]) -> dict[str, Any]:
        return {"service": {"name": service[0], "port": {"number": service[1]}}}

    rules = []
    for host in ingress.hosts:
        paths = [{"path": p.path, "pathType": p.path_type, "backend": backend(front)} for p in host.paths]
        rules.append({"host": host.host, "http": {"paths": paths}})
    spec: dict[str, Any] = {"ingressClassName": ingress.class_name, "rules": rules}
    if ingress.tls.mode != "none":
        spec["tls"] = [{"hosts": [h.host for h in ingress.hosts], "secretName": ingress.tls.secret_name}]
    meta = object_metadata(namespace, {**base_labels, "app.kubernetes.io/name": "langflow", "app.kubernetes.io/instance": app,
                                 "app.kubernetes.io/part-of": "langflow", "app.kubernetes.io/managed-by": "pulumi"},
                     {**annotations, **ingress_annotations(ingress, upload_limit_mb, sso)}, app)
    return {"metadata": meta, "spec": spec}
