"""Config of the edge: the Ingress (`langflow:ingress`) and single sign-on (`langflow:sso`).

Single sign-on is oauth2-proxy in front of Langflow, signing people in with the
platform's Dex, plus the OAuth2Client object Dex needs. Rules across keys
(SSO needs the ingress and TLS, Langflow's Service stays private) live in
settings/validation.py.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal, Optional

from pydantic import Field, SecretStr, field_validator, model_validator

from settings import kube
from settings.base import PinnedImage, Quantity, StrictModel, all_problems, at, valid, version_before, whole_version
from settings.syntax import cidr_problem, expansion_problem, host_name_problem, url_problem, with_character

OAUTH2_PROXY_DEFAULT_TAG = "v7.15.6"
# oauth2-proxy's session store: the Redis release Debian 12 ships (redis-server 5:7.0.15), which the SSO test runs.
REDIS_DEFAULT_TAG = "7.0.15"
SessionStore = Literal["redis", "cookie"]
# The first Langflow with external authentication (LANGFLOW_EXTERNAL_AUTH_*): lfx 1.11.0 and langflow-base
# 0.11.0 have it, 1.10.3 has none of it (checked in the released wheels). Older releases ignore the variables.
PER_USER_SINCE = (1, 11)
IdentityMode = Literal["shared", "per-user"]
AccessLevel = Literal["viewer", "editor", "admin"]
# Where Dex sends people back to oauth2-proxy after they sign in.
CALLBACK_PATH = "/oauth2/callback"
# Annotations the program puts on objects from other keys: a user's copy would silently win, or lose.
PROGRAM_ANNOTATIONS = {
    "nginx.ingress.kubernetes.io/proxy-body-size": "runtime.max_file_size_upload_mb",
    "nginx.ingress.kubernetes.io/proxy-read-timeout": "ingress.timeout_seconds",
    "nginx.ingress.kubernetes.io/proxy-send-timeout": "ingress.timeout_seconds",
    "nginx.ingress.kubernetes.io/proxy-buffer-size": "sso.enabled (room for oauth2-proxy's cookies)",
    "cert-manager.io/cluster-issuer": "ingress.tls.cluster_issuer",
    "cert-manager.io/issuer": "ingress.tls.issuer",
    "prometheus.io/scrape": "metrics.enabled and metrics.scrape",
    "prometheus.io/port": "metrics.langflow_port",
    "prometheus.io/path": "metrics.enabled",
}
NGINX = "nginx.ingress.kubernetes.io/"
# ingress-nginx annotations that send requests somewhere the config does not say: past the sign-in, to another
# backend or host, or with their cookies copied elsewhere.
REROUTING_ANNOTATIONS = {
    "server-alias": "adds host names that no TLS, callback or CORS setting knows",
    "default-backend": "sends unmatched requests to another Service",
    "custom-http-errors": "sends error answers through another backend",
    "rewrite-target": "rewrites paths, so the sign-in's and the API paths' prefixes no longer mean what they say",
    "use-regex": "turns every path into a regular expression, so an API path matches more than it says",
    "app-root": "redirects / elsewhere",
    "permanent-redirect": "redirects every request elsewhere",
    "temporal-redirect": "redirects every request elsewhere",
    "upstream-vhost": "changes the Host header Langflow and oauth2-proxy see",
    "service-upstream": "bypasses the endpoints the NetworkPolicies and probes were made for",
}


def ingress_annotation_problem(name: str) -> Optional[str]:
    """Why an Ingress annotation may not be set from config (None: it may)."""
    key = name.lower()
    if not key.startswith(NGINX):
        return None
    short = key.removeprefix(NGINX)
    if short.endswith("-snippet"):
        return ("injects raw nginx configuration, which can route around the sign-in and read other tenants' "
                "traffic (ingress-nginx turns snippets off by default since 1.9, for CVE-2021-25742 and "
                "CVE-2025-1974); remove it, and use the program's keys or a plain annotation")
    if short.startswith(("mirror-", "canary")):
        return ("sends requests, with people's cookies and API keys, to another backend; remove it (use a second "
                "stack for a canary)")
    if short in REROUTING_ANNOTATIONS:
        return f"{REROUTING_ANNOTATIONS[short]}; remove it"
    return None


def routes(path: str, path_type: str, target: str) -> bool:
    """Whether an Ingress path of this type sends `target` to its backend (ingress-nginx: ImplementationSpecific
    is a prefix of the string)."""
    if path_type == "Exact":
        return target == path
    if path_type == "ImplementationSpecific":
        return target.startswith(path)
    return path == "/" or target == path.rstrip("/") or target.startswith(path.rstrip("/") + "/")


# The Langflow endpoints that take an API key: the only paths that may skip the sign-in (sso.api_paths).
API_KEY_PATHS = ("/api/v1/run/", "/api/v1/webhook/")
# Long flow runs and streamed answers: 1 hour, for the ingress and oauth2-proxy alike.
DEFAULT_TIMEOUT_SECONDS = 3600


def host_problem(value: str) -> Optional[str]:
    """Ingress hosts are DNS names: an IP address cannot carry a certificate or an exact redirect URI."""
    try:
        ipaddress.ip_address(value.strip("[]"))
        return f"{value!r} is an IP address; an ingress host must be a DNS name (e.g. langflow.example.com)"
    except ValueError:
        pass
    if value.startswith("*."):
        return f"{value!r} is a wildcard; name each host (sign-in redirects are matched exactly)"
    problem = host_name_problem(value, "DNS name")
    if problem:
        return f"{problem} (no scheme, no port, no path)"
    if "." not in value and value != "localhost":
        return f"{value!r} is not a full DNS name; write e.g. langflow.example.com (no scheme, no port, no path)"
    return None


class IngressPath(StrictModel):
    path: str = Field("/", description="URL path routed to Langflow.")
    path_type: Literal["Prefix", "Exact", "ImplementationSpecific"] = Field("Prefix", description="Ingress pathType.")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or any(c in value for c in " ?#") or "//" in value:
            raise ValueError(f"{value!r} is not a URL path; write e.g. / or /langflow")
        return value


class IngressHost(StrictModel):
    host: str = Field(description="A DNS name (never an IP address).")
    paths: list[IngressPath] = Field(default_factory=lambda: [IngressPath()], description="Paths on this host.")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return valid(value, host_problem(value))


class IngressTLS(StrictModel):
    mode: Literal["secret", "cert-manager", "none"] = Field(
        "cert-manager",
        description="`secret`: an existing Secret holds the certificate; `cert-manager`: cert-manager issues it "
        "into that Secret (set `cluster_issuer` or `issuer`); `none`: plain HTTP (refused with SSO).",
    )
    secret_name: Optional[str] = Field(None, description="The TLS Secret (existing, or the one cert-manager fills).")
    cluster_issuer: Optional[str] = Field(None, description="cert-manager ClusterIssuer (mode cert-manager).")
    issuer: Optional[str] = Field(None, description="cert-manager Issuer in the namespace (mode cert-manager).")

    @field_validator("secret_name", "cluster_issuer", "issuer")
    @classmethod
    def _names(cls, value: Optional[str]) -> Optional[str]:
        return value if value is None else valid(value, kube.dns_subdomain_problem(value, "name"))

    def problem(self) -> Optional[tuple[str, str]]:
        """(sub-key, message) when the TLS settings cannot serve an enabled ingress."""
        if self.mode != "none" and not self.secret_name:
            return "secret_name", f"required with mode {self.mode}: the Secret that holds the certificate"
        if self.mode == "cert-manager" and (self.cluster_issuer is None) == (self.issuer is None):
            return "cluster_issuer", "with mode cert-manager set exactly one of cluster_issuer or issuer"
        if self.mode != "cert-manager" and (self.cluster_issuer or self.issuer):
            return ("cluster_issuer" if self.cluster_issuer else "issuer",
                    f"only used with mode cert-manager (mode is {self.mode}); remove it")
        return None


class IngressConfig(StrictModel):
    enabled: bool = Field(False, description="Publish Langflow through an Ingress (`networking.k8s.io/v1`).")
    class_name: str = Field("nginx", description="IngressClass name.")
    hosts: list[IngressHost] = Field(default_factory=list, description="Hosts, each with its paths.")
    tls: IngressTLS = Field(default_factory=IngressTLS, description="TLS for every host.")
    timeout_seconds: int = Field(
        DEFAULT_TIMEOUT_SECONDS, ge=60, le=86400,
        description="Read and send timeout for ingress-nginx (streamed answers and long flow runs).",
    )
    annotations: dict[str, str] = Field(default_factory=dict, description="Extra Ingress annotations.")

    @field_validator("class_name")
    @classmethod
    def _class_name(cls, value: str) -> str:
        return valid(value, kube.dns_subdomain_problem(value, "IngressClass name"))

    @model_validator(mode="after")
    def _consistent(self) -> "IngressConfig":
        problems: list[tuple[str, str]] = []
        if self.enabled and not self.hosts:
            problems.append(("hosts", "at least one host is required with the ingress enabled, e.g. "
                             "[{host: langflow.example.com}]"))
        tls = self.tls.problem() if self.enabled else None
        if tls:
            problems.append((f"tls.{tls[0]}", tls[1]))
        names = [h.host for h in self.hosts]
        for index, name in enumerate(names):
            if names.index(name) != index:
                problems.append((f"hosts[{index}].host", f"{name!r} is listed twice; list each host once"))
        all_problems(self, problems)
        return self


class ImageRef(PinnedImage):
    repository: str = Field("quay.io/oauth2-proxy/oauth2-proxy", description="Image repository (honours image.registry).")
    tag: str = Field(OAUTH2_PROXY_DEFAULT_TAG, description="Pinned version tag.")

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        # After PinnedImage's rule: oauth2-proxy releases are vX.Y.Z.
        whole_version(value, OAUTH2_PROXY_DEFAULT_TAG, v_prefix=True)
        return value


class RedisImage(PinnedImage):
    repository: str = Field("docker.io/library/redis", description="Image repository (honours image.registry).")
    tag: str = Field(REDIS_DEFAULT_TAG, description="Pinned version tag.")

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        whole_version(value, REDIS_DEFAULT_TAG)
        return value


class RedisConfig(StrictModel):
    image: RedisImage = Field(default_factory=RedisImage, description="The Redis image.")
    resources: dict[str, dict[str, Quantity]] = Field(
        default_factory=lambda: {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        description="Container resources (`requests`, `limits`).",
    )


def cidr_list(value: list[str]) -> list[str]:
    """Address ranges written exactly (`10.244.0.0/16`, one address as `/32`), each listed once."""
    for index, cidr in enumerate(value):
        problem = cidr_problem(cidr, "10.244.0.0/16")
        if problem:
            raise at(f"[{index}]", problem)
        if value.index(cidr) != index:
            raise at(f"[{index}]", f"{cidr} is listed twice; list each range once")
    return value


class OAuth2ProxyConfig(StrictModel):
    image: ImageRef = Field(default_factory=ImageRef, description="The oauth2-proxy image.")
    session_store: SessionStore = Field(
        "redis",
        description="Where sign-ins live. `redis`: in a Redis the stack runs beside oauth2-proxy (the cookie "
        "holds only a ticket); signing out deletes the session, so a copy of the cookie stops working at once. "
        "`cookie`: inside the encrypted cookie itself; signing out only clears the browser's copy, and a copied "
        "cookie keeps working until it expires (`--cookie-expire`), with a warning in every preview.",
    )
    redis: RedisConfig = Field(
        default_factory=RedisConfig,
        description="The session store's Redis (with `session_store: redis`): one pod, no volume (losing it only "
        "signs people out), a generated password, reachable only from oauth2-proxy's pods.",
    )
    trusted_proxy_cidrs: list[str] = Field(
        default_factory=list,
        description="The ingress controller's pod addresses (CIDRs): oauth2-proxy then takes the client address, "
        "host and scheme from their X-Forwarded-* headers (`--reverse-proxy`, `--trusted-proxy-ip`), and from no "
        "one else. Empty: it trusts no X-Forwarded-* header at all (the redirect URL is fixed, the Host header is "
        "the ingress'); its logs show the controller's address, not the person's. Not with `sso.api_paths`: "
        "oauth2-proxy matches those against a trusted proxy's X-Forwarded-Uri, which ingress-nginx passes on "
        "from the client.",
    )
    replicas: int = Field(2, ge=1, le=10, description="Pods (a PodDisruptionBudget keeps one up with more than one).")
    resources: dict[str, dict[str, Quantity]] = Field(
        default_factory=lambda: {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        description="Container resources (`requests`, `limits`).",
    )
    email_domains: list[str] = Field(
        default_factory=lambda: ["*"],
        description="E-mail domains allowed in: `example.com`, `*.example.com` for its subdomains, or `*` for everyone "
        "Dex signs in."
    )
    upstream_timeout_seconds: int = Field(
        DEFAULT_TIMEOUT_SECONDS, ge=30, le=86400,
        description="How long oauth2-proxy waits for Langflow (its default, 30 s, cuts long flow runs off).",
    )

    _trusted_proxy_cidrs = field_validator("trusted_proxy_cidrs")(classmethod(lambda cls, value: cidr_list(value)))

    @model_validator(mode="after")
    def _redis_only_with_redis(self) -> "OAuth2ProxyConfig":
        if self.session_store != "redis" and "redis" in self.model_fields_set:
            raise at("redis", f"only used with session_store: redis (it is {self.session_store}); remove it, or "
                     "set session_store: redis")
        return self

    @field_validator("email_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        for index, domain in enumerate(value):
            if domain == "*":
                continue
            # oauth2-proxy matches `*.example.com` (and `.example.com`) against every subdomain of example.com.
            problem = host_name_problem(domain.removeprefix("*.").removeprefix("."), "e-mail domain", "example.com")
            if problem:
                raise at(f"[{index}]", f"{problem}; or *.example.com for its subdomains, or * for everyone")
        if not value:
            raise ValueError("at least one domain is required; * lets in everyone Dex signs in")
        return value


class DexConfig(StrictModel):
    namespace: str = Field("cpaas-system", description="Dex's namespace, where the OAuth2Client object goes.")
    id_token_expiry_minutes: int = Field(
        1440, ge=15, le=10080,
        description="Dex's `expiry.idTokens` (its default: 24h). With `identity.mode: per-user` the sign-in "
        "(oauth2-proxy's cookie) ends 5 minutes before the ID token does, so Langflow never gets an expired "
        "token: people sign in again.",
    )
    kubeconfig: Optional[SecretStr] = Field(
        None,
        description="Kubeconfig (a path or the content) of the cluster Dex runs on, when it is not the workload's "
        "(the platform's global cluster). Unset: the workload's cluster.",
    )
    context: Optional[str] = Field(None, description="Kube context of Dex's cluster. Unset: the current one.")

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return valid(value, kube.dns_label_problem(value, "namespace name"))


def claim_name(value: str) -> str:
    """A claim of the ID token: a JSON member name, never empty or padded (it goes to Langflow's environment)."""
    if not value.strip() or value != value.strip() or len(value) > 128 or any(ord(c) < 32 for c in value):
        raise ValueError(with_character(f"{value!r} is not a claim name; write the ID token's claim, e.g. email", value))
    return valid(value, expansion_problem(value))


class AccessConfig(StrictModel):
    claim: Optional[str] = Field(
        None,
        description="A string claim of the ID token whose value picks each person's access level in Langflow "
        "(its access ceiling). Unset: everyone signed in has full rights over their own flows. Dex's `groups` "
        "cannot be used: it is a list, and Langflow compares the claim as one text.",
    )
    levels: dict[str, AccessLevel] = Field(
        default_factory=dict,
        description="Claim value -> `viewer` (read only), `editor` (build and run, not deploy) or `admin` (no "
        "cap). Required with `claim`; values it does not name get `default_level`.",
    )
    default_level: AccessLevel = Field(
        "viewer", description="The level of people whose claim value is not in `levels` (only with `claim`)."
    )

    @field_validator("claim")
    @classmethod
    def _claim(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return value
        claim_name(value)
        if value == "groups":
            raise ValueError("Dex's groups claim is a list, and Langflow reads a list claim as one text (e.g. "
                             "\"['a', 'b']\"), so no value of `levels` would ever match; use a string claim, "
                             "e.g. email")
        return value

    @field_validator("levels")
    @classmethod
    def _levels(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            problem = expansion_problem(key)
            if problem:
                raise at(kube.key_path(key), problem)
            if not key.strip():
                raise at(kube.key_path(key), "an empty claim value matches nobody; write the value, e.g. alice@example.com")
        lowered = [key.strip().lower() for key in value]
        for index, key in enumerate(lowered):
            if lowered.index(key) != index:
                raise at(kube.key_path(list(value)[index]), "Langflow compares values without case or outer spaces: "
                         "this one is listed twice; list it once")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "AccessConfig":
        if self.claim is None:
            for key in ("levels", "default_level"):
                if key in self.model_fields_set:
                    raise at(key, "only used with `claim` (the claim whose value picks the level); set claim, or "
                             "remove it")
        elif not self.levels:
            raise at("levels", "required with `claim`: map each claim value to viewer, editor or admin, e.g. "
                     "{alice@example.com: admin}")
        return self


class IdentityConfig(StrictModel):
    mode: Optional[IdentityMode] = Field(
        None,
        description="`per-user`: each person Dex signs in is their own Langflow user (oauth2-proxy passes the ID "
        "token, Langflow verifies it against Dex's keys; Langflow 1.11+, login on). `shared`: Langflow does not "
        "know who signed in (with login off everyone is the superuser). Unset: per-user where the Langflow "
        "version and `auth.enabled` allow it, else shared.",
    )
    username_claim: str = Field(
        "email", description="The ID token claim that becomes the Langflow username: `email`, or "
        "`preferred_username` where Dex's connector sets it.",
    )
    access: AccessConfig = Field(default_factory=AccessConfig, description="Access levels from a claim (per-user).")
    api_keys: bool = Field(
        False,
        description="People signed in through SSO may create API keys (keys outlive the sign-in: they keep "
        "working after the person leaves, until deleted). The superuser's keys are not affected.",
    )

    _username_claim = field_validator("username_claim")(classmethod(lambda cls, value: claim_name(value)))


class SSOConfig(StrictModel):
    enabled: bool = Field(False, description="Single sign-on: oauth2-proxy in front of Langflow, signing in with Dex.")
    issuer_url: Optional[str] = Field(
        None, description="Dex's issuer: the platform's address plus `/dex`, e.g. https://platform.example.com/dex."
    )
    client_id: str = Field("langflow", description="The OAuth2 client id registered in Dex.")
    client_secret: Optional[SecretStr] = Field(
        None, description="The client secret. Unset: generated once and kept; Dex and oauth2-proxy share it."
    )
    display_name: str = Field("Langflow", description="The client's name on Dex's pages.")
    api_paths: list[str] = Field(
        default_factory=list,
        description="Paths (prefixes) on which oauth2-proxy signs no one in, for API clients with an API key "
        "(`/api/v1/run/`, or `/api/v1/webhook/` from Langflow 1.13, or below; needs `auth.enabled: true`, or the "
        "paths would be open to anyone): "
        "everything still goes through oauth2-proxy, which passes these on to Langflow without a sign-in and "
        "without a client's `Authorization` header (per-user), so Langflow's API-key check (`x-api-key`) guards "
        "them and a person's Dex token does not. Empty: every path needs the sign-in; API clients use the "
        "in-cluster address.",
    )
    allow_exposed_langflow_service: bool = Field(
        False, description="Allow a LoadBalancer or NodePort Langflow Service, which bypasses the sign-in."
    )
    oauth2_proxy: OAuth2ProxyConfig = Field(default_factory=OAuth2ProxyConfig, description="The oauth2-proxy Deployment.")
    dex: DexConfig = Field(default_factory=DexConfig, description="Where the OAuth2Client object goes.")
    identity: IdentityConfig = Field(
        default_factory=IdentityConfig, description="Who Langflow sees behind the sign-in.")

    @field_validator("issuer_url")
    @classmethod
    def _issuer(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return value
        example = "https://platform.example.com/dex"
        valid(value, url_problem(value, example=example, loopback_http=True) or expansion_problem(value))
        if value.endswith("/"):
            raise ValueError(f"{value!r} is not an issuer URL: it ends with '/'; write it exactly as Dex's `issuer` (tokens carry it, and are "
                             f"compared exactly), e.g. {example}")
        return value

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        # OAuth 2.0 client ids are printable ASCII (RFC 6749, VSCHAR); Langflow splits its audience setting on
        # commas; the id goes into oauth2-proxy's arguments and Langflow's environment.
        if not value.strip() or len(value) > 128 or any(not " " <= c <= "~" for c in value) or value != value.strip():
            raise ValueError(with_character(f"{value!r}: a client id is 1 to 128 printable ASCII characters, without "
                                            "leading or trailing spaces, e.g. langflow", value))
        if "," in value:
            raise ValueError(f"{value!r} holds a comma, and Langflow reads a comma-separated list of audiences there; "
                             "use a client id without commas, e.g. langflow")
        return valid(value, expansion_problem(value))

    @field_validator("display_name")
    @classmethod
    def _text(cls, value: str) -> str:
        if not value.strip() or len(value) > 128 or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError(with_character(f"{value!r}: use 1 to 128 printable characters, e.g. Langflow", value))
        return value

    @field_validator("api_paths")
    @classmethod
    def _api_paths(cls, value: list[str]) -> list[str]:
        for index, path in enumerate(value):
            if not path.startswith("/api/") or not path.endswith("/") or not re.fullmatch(r"[A-Za-z0-9._~/-]+", path) \
                    or "//" in path or "/./" in path or "/../" in path:
                raise at(f"[{index}]", with_character(f"{path!r}: only Langflow's API paths may skip the sign-in, "
                                                      "ending in /, e.g. /api/v1/run/", path))
            if not path.startswith(API_KEY_PATHS):
                raise at(f"[{index}]", f"{path!r} would send more than the API-key endpoints around the sign-in "
                         f"(Langflow's login, auto-login and user API sit under /api/); use {' or '.join(API_KEY_PATHS)} "
                         "or a path below them")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "SSOConfig":
        if self.enabled and self.issuer_url is None:
            raise at("issuer_url", "required with SSO on: Dex's issuer, the platform's address plus /dex")
        if self.oauth2_proxy.trusted_proxy_cidrs and self.api_paths:
            raise at("oauth2_proxy.trusted_proxy_cidrs", "not with sso.api_paths: oauth2-proxy matches the paths that "
                     "skip the sign-in against a trusted proxy's X-Forwarded-Uri, which ingress-nginx passes on from "
                     "the client, so any request could claim an API path; set api_paths: [] (API clients use the "
                     "in-cluster address), or remove trusted_proxy_cidrs")
        return self


def identity_mode(sso: SSOConfig, langflow_tag: str, login: bool) -> Optional[IdentityMode]:
    """Who Langflow sees behind the sign-in (None: no SSO). Unset, per-user where it works: Langflow 1.11+
    with its own login on (external tokens are checked only where logins are)."""
    if not sso.enabled:
        return None
    if sso.identity.mode is not None:
        return sso.identity.mode
    return "per-user" if login and not version_before(langflow_tag, PER_USER_SINCE) else "shared"


def jwks_url(issuer_url: str) -> str:
    """Where Dex serves its signing keys (`<issuer>/keys`, as its discovery document says)."""
    return f"{issuer_url}/keys"


def edge_warnings(sso: SSOConfig) -> list[str]:
    """Allowed, and said in every preview: sign-ins kept in the cookie itself outlive signing out."""
    if not sso.enabled or sso.oauth2_proxy.session_store != "cookie":
        return []
    return ["sso.oauth2_proxy.session_store is cookie: the session lives inside oauth2-proxy's cookie, so signing "
            "out only clears the browser's copy; a copy of the cookie taken before keeps reaching Langflow until it "
            "expires (--cookie-expire). session_store: redis makes signing out end it at once."]
