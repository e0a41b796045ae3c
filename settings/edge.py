"""Config of the edge: the Ingress (`langflow:ingress`) and single sign-on (`langflow:sso`).

Single sign-on is oauth2-proxy in front of Langflow, signing people in with the
platform's Dex, plus the OAuth2Client object Dex needs. Rules across keys
(SSO needs the ingress and TLS, Langflow's Service stays private) live in
settings/validation.py.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from typing import Literal, Optional

from pydantic import Field, SecretStr, field_validator, model_validator

from settings import kube
from settings.base import PinnedImage, moving_tag, Quantity, StrictModel, at, valid, version_before

OAUTH2_PROXY_DEFAULT_TAG = "v7.15.6"
# The first Langflow with external authentication (LANGFLOW_EXTERNAL_AUTH_*): lfx 1.11.0 and langflow-base
# 0.11.0 have it, 1.10.3 has none of it (checked in the released wheels). Older releases ignore the variables.
PER_USER_SINCE = (1, 11)
IdentityMode = Literal["shared", "per-user"]
AccessLevel = Literal["viewer", "editor", "admin"]
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
    if len(value) > 253 or not kube.DNS_SUBDOMAIN.match(value) or "." not in value and value != "localhost":
        return f"{value!r} is not a DNS name; write e.g. langflow.example.com (no scheme, no port, no path)"
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
        if self.enabled and not self.hosts:
            raise at("hosts", "at least one host is required with the ingress enabled, e.g. [{host: langflow.example.com}]")
        tls = self.tls.problem() if self.enabled else None
        if tls:
            raise at(f"tls.{tls[0]}", tls[1])
        names = [h.host for h in self.hosts]
        for index, name in enumerate(names):
            if names.index(name) != index:
                raise at(f"hosts[{index}].host", f"{name!r} is listed twice; list each host once")
        return self


class ImageRef(PinnedImage):
    repository: str = Field("quay.io/oauth2-proxy/oauth2-proxy", description="Image repository (honours image.registry).")
    tag: str = Field(OAUTH2_PROXY_DEFAULT_TAG, description="Pinned version tag.")

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        # After PinnedImage's rule: oauth2-proxy releases are vX.Y.Z.
        if not re.match(r"^v?\d+\.\d+\.\d+", value):
            raise ValueError(moving_tag(value, "is not a whole version (vX.Y.Z)", OAUTH2_PROXY_DEFAULT_TAG))
        return value


class OAuth2ProxyConfig(StrictModel):
    image: ImageRef = Field(default_factory=ImageRef, description="The oauth2-proxy image.")
    replicas: int = Field(2, ge=1, le=10, description="Pods (a PodDisruptionBudget keeps one up with more than one).")
    resources: dict[str, dict[str, Quantity]] = Field(
        default_factory=lambda: {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        description="Container resources (`requests`, `limits`).",
    )
    email_domains: list[str] = Field(
        default_factory=lambda: ["*"], description="E-mail domains allowed in (`*`: everyone Dex signs in)."
    )
    upstream_timeout_seconds: int = Field(
        DEFAULT_TIMEOUT_SECONDS, ge=30, le=86400,
        description="How long oauth2-proxy waits for Langflow (its default, 30 s, cuts long flow runs off).",
    )

    @field_validator("email_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        for index, domain in enumerate(value):
            if domain != "*" and not kube.DNS_SUBDOMAIN.match(domain):
                raise at(f"[{index}]", f"{domain!r} is not an e-mail domain; write e.g. example.com, or * for everyone")
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
    """A claim of the ID token: a JSON member name, never empty or padded."""
    if not value.strip() or value != value.strip() or len(value) > 128 or any(ord(c) < 32 for c in value):
        raise ValueError(f"{value!r} is not a claim name; write the ID token's claim, e.g. email")
    return value


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
            if not key.strip():
                raise at(f"[{key!r}]", "an empty claim value matches nobody; write the value, e.g. alice@example.com")
        lowered = [key.strip().lower() for key in value]
        for index, key in enumerate(lowered):
            if lowered.index(key) != index:
                raise at(f"[{list(value)[index]!r}]", "Langflow compares values without case or outer spaces: "
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
        default_factory=lambda: ["/api/v1/run/"],
        description="Paths routed past oauth2-proxy straight to Langflow, for API clients with an API key "
        "(Langflow checks `x-api-key` on them). Empty: API clients use the in-cluster address.",
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
        parts = urllib.parse.urlsplit(value)
        loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ValueError(f"{value!r} must be an https URL (http only on localhost), e.g. https://platform.example.com/dex")
        if not parts.hostname or parts.query or parts.fragment or value.endswith("/"):
            raise ValueError(f"{value!r} is not an issuer URL; write it as Dex's `issuer`, e.g. https://platform.example.com/dex")
        return value

    @field_validator("client_id", "display_name")
    @classmethod
    def _text(cls, value: str) -> str:
        if not value.strip() or len(value) > 128 or any(ord(c) < 32 for c in value):
            raise ValueError(f"{value!r}: use 1 to 128 printable characters, e.g. langflow")
        return value

    @field_validator("api_paths")
    @classmethod
    def _api_paths(cls, value: list[str]) -> list[str]:
        for index, path in enumerate(value):
            if not path.startswith("/api/") or not path.endswith("/") or " " in path:
                raise at(f"[{index}]", f"{path!r}: only Langflow's API paths may skip the sign-in, ending in /, "
                         "e.g. /api/v1/run/")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "SSOConfig":
        if self.enabled and self.issuer_url is None:
            raise at("issuer_url", "required with SSO on: Dex's issuer, the platform's address plus /dex")
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
