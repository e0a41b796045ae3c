"""Every rule beyond one value's own type, in one place, all reported at once.

The loader validates the model first. Sections that failed are left out and
marked unchecked; then every rule here runs against what is valid. A rule
that reads an unchecked section is skipped, so one mistake never hides
another and never causes a misleading follow-up message.

Each rule yields `(key_path, message)`: the key to change, then what is
wrong and how to fix it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Iterable, Iterator, Optional

from settings import kube
from settings.ambassador import AMBASSADOR_OFF_KEYS, key_from_env
from settings.backups import backup_engine
from settings.edge import (
    CALLBACK_PATH, PER_USER_SINCE, PROGRAM_ANNOTATIONS, edge_warnings, identity_mode, ingress_annotation_problem,
    routes,
)
from settings.network import network_warnings
from settings.managed import MANAGED_PATHS, MANAGED_VOLUMES, STARTUP_BUDGET_SECONDS, managed_env_source
from settings.model import LangflowStackConfig, version_before

Problem = tuple[str, str]

# Pod Security "restricted" allows only these volume sources.
RESTRICTED_VOLUME_TYPES = (
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
)
# Labels the program sets itself; selectors and Pod Security depend on them.
RESERVED_LABEL_KEYS = (
    "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of", "app.kubernetes.io/version",
)
RESERVED_LABEL_PREFIXES = ("pod-security.kubernetes.io/",)
# Annotations that steer Pulumi (awaits, patching) or carry the program's own records.
RESERVED_ANNOTATION_PREFIXES = ("pulumi.com/", "langflow.org/")
# Namespaces every cluster has: creating one would adopt it.
PRESET_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
MIN_MEMORY_LIMIT = kube.parse_quantity("1Gi")
MIN_STORAGE = kube.parse_quantity("100Mi")
MIN_DATABASE_STORAGE = kube.parse_quantity("1Gi")
MIN_DATABASE_MEMORY = kube.parse_quantity("256Mi")
TOLERATION_OPERATORS = ("Exists", "Equal")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
RESOURCE_NAMES = ("cpu", "memory", "ephemeral-storage")


class Unchecked(Exception):
    """A rule read a config section that failed validation: the rule is skipped."""


class PartialConfig:
    """The valid part of a config; reading a section that failed raises Unchecked."""

    def __init__(self, config: LangflowStackConfig, failed: Iterable[str]):
        self._config, self._failed = config, frozenset(failed)

    def __getattr__(self, name: str) -> Any:
        if name in self._failed:
            raise Unchecked(name)
        return getattr(self._config, name)

    def section_valid(self, name: str) -> bool:
        return name not in self._failed

    def whole(self) -> LangflowStackConfig:
        """The validated config; only when every section is valid."""
        assert not self._failed, f"unchecked sections: {sorted(self._failed)}"
        return self._config


def _under(key: str, problems: Iterable[Problem]) -> list[Problem]:
    return [(key + sub if sub.startswith(("[", ".")) or not sub else f"{key}.{sub}", message)
            for sub, message in problems]


# --- one key, several problems -------------------------------------------------------

def labels_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    yield from _under("labels", kube.label_problems(config.labels))
    for key in config.labels:
        if key in RESERVED_LABEL_KEYS or key.startswith(RESERVED_LABEL_PREFIXES):
            yield (f"labels{kube.key_path(key)}",
                   "set by the program itself (selectors and Pod Security depend on it); remove it")


def _annotations(key: str, annotations: dict[str, str]) -> Iterator[Problem]:
    yield from _under(key, kube.annotation_problems(annotations))
    for name in annotations:
        if name.lower().startswith(RESERVED_ANNOTATION_PREFIXES):
            yield (f"{key}{kube.key_path(name)}",
                   "pulumi.com/ and langflow.org/ annotations steer how the program deploys and what it "
                   "records; they cannot be set from config. Remove it")


def annotations_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    yield from _annotations("annotations", config.annotations)


def service_annotations_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    yield from _annotations("service.annotations", config.service.annotations)


def node_selector_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    yield from _under("node_selector", kube.label_problems(config.node_selector))


def _each_checked(key: str, items: list[Any], type_file: str,
                  rules: Callable[[str, int, Any], Iterable[Problem]]) -> Iterator[Problem]:
    """For each pass-through item: its API schema problems, or, when it has none, its rules' problems."""
    for index, item in enumerate(items):
        at = f"{key}[{index}]"
        found = kube.schema_problems(type_file, item)
        yield from _under(at, found) if found else rules(at, index, item)


def _toleration(at: str, index: int, toleration: dict[str, Any]) -> Iterator[Problem]:
    if toleration.get("operator", "Equal") not in TOLERATION_OPERATORS:
        yield (f"{at}.operator", f"{toleration['operator']!r} is not an operator; use Exists or Equal")
    elif toleration.get("effect") not in (None, "", *TAINT_EFFECTS):
        yield (f"{at}.effect", f"{toleration['effect']!r} is not a taint effect; use {', '.join(TAINT_EFFECTS)}")
    else:
        yield from _under(at, kube.toleration_problems(toleration))


def tolerations_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    yield from _each_checked("tolerations", config.tolerations, "toleration-v1", _toleration)


def affinity_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    found = kube.schema_problems("affinity-v1", config.affinity)
    yield from _under("affinity", found or kube.affinity_problems(config.affinity))


def extra_env_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for index, env in enumerate(config.extra_env):
        key = f"extra_env[{index}]"
        managed = managed_env_source(env.name)
        if managed is not None:
            read_as, source = managed
            how = "it cannot be overridden" if source.startswith("nothing") else "change that instead"
            yield (f"{key}.name", f"{env.name} is read by Langflow as {read_as}, which this program sets "
                   f"from {source}; {how}")
        elif env.name.upper() in seen:
            yield (f"{key}.name", f"{env.name} is already set by extra_env[{seen[env.name.upper()]}] (names are "
                   "compared ignoring case, as Langflow reads them); remove one")
        seen.setdefault(env.name.upper(), index)
        if env.value_from is not None:
            found = kube.schema_problems("envvarsource-v1", env.value_from)
            yield from _under(f"{key}.valueFrom", found or kube.env_source_problems(env.value_from))


def extra_volumes_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    names = Counter(v.get("name") for v in config.extra_volumes if isinstance(v.get("name"), str))

    def volume_rules(at: str, index: int, volume: dict[str, Any]) -> Iterator[Problem]:
        name = volume["name"]
        problem = kube.dns_label_problem(name, "volume name")
        if problem:
            yield (f"{at}.name", problem)
        elif name in MANAGED_VOLUMES:
            yield (f"{at}.name", f"{name!r} is a volume of the program's own ({', '.join(MANAGED_VOLUMES)}); rename it")
        elif names[name] > 1:
            yield (f"{at}.name", f"{name!r} is used by another extra volume too; rename one")
        sources = [s for s in volume if s != "name" and volume[s] is not None]
        if len(sources) != 1:
            yield (at, f"volume {name!r} needs exactly one source, e.g. secret or configMap (got {len(sources)})")
        elif sources[0] not in RESTRICTED_VOLUME_TYPES:
            yield (f"{at}{kube.key_path(sources[0])}",
                   f"a {sources[0]} volume is not allowed under Pod Security 'restricted'; use one of "
                   f"{', '.join(RESTRICTED_VOLUME_TYPES)}")
        else:
            source = sources[0]
            yield from _under(f"{at}{kube.key_path(source)}", kube.volume_source_problems(source, volume[source]))

    yield from _each_checked("extra_volumes", config.extra_volumes, "volume-v1", volume_rules)


def extra_volume_mounts_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    volume_names = {v.get("name") for v in config.extra_volumes if isinstance(v.get("name"), str)}
    seen: dict[str, int] = {}

    def mount_rules(at: str, index: int, mount: dict[str, Any]) -> Iterator[Problem]:
        if mount["name"] not in volume_names:
            yield (f"{at}.name", f"no extra volume named {mount['name']!r}; add it to extra_volumes")
        path = mount["mountPath"]
        if not path.startswith("/") or ":" in path:
            yield (f"{at}.mountPath", f"{path!r} must be an absolute path without ':', e.g. /etc/langflow/certs")
            return
        normal = kube.normal_path(path)
        managed = [p for p in MANAGED_PATHS if kube.paths_overlap(p, normal)]
        if managed:
            yield (f"{at}.mountPath", f"{path} overlaps {managed[0]}, which the program mounts; choose another path")
        elif normal in seen:
            yield (f"{at}.mountPath", f"{path} is {normal}, already mounted by extra_volume_mounts[{seen[normal]}]; "
                   "each path can be mounted once")
        seen.setdefault(normal, index)
        if mount.get("subPath"):
            problem = kube.relative_path_problem(mount["subPath"], "subPath")
            if problem:
                yield (f"{at}.subPath", problem)
            if mount.get("subPathExpr"):
                yield (f"{at}.subPathExpr", "set subPath or subPathExpr, not both")
        if mount.get("mountPropagation") == "Bidirectional":
            yield (f"{at}.mountPropagation", "Bidirectional needs a privileged container; remove it")
        elif mount.get("mountPropagation") not in (None, "None", "HostToContainer"):
            yield (f"{at}.mountPropagation", "use None or HostToContainer")
        recursive = mount.get("recursiveReadOnly")
        if recursive not in (None, "Disabled", "Enabled", "IfPossible"):
            yield (f"{at}.recursiveReadOnly", f"{recursive!r}: use Disabled, Enabled or IfPossible")
        elif recursive not in (None, "Disabled") and not mount.get("readOnly"):
            yield (f"{at}.recursiveReadOnly", "needs readOnly: true")

    yield from _each_checked("extra_volume_mounts", config.extra_volume_mounts, "volumemount-v1", mount_rules)


def _resource_problems(key: str, requests: dict[str, str], limits: dict[str, str], defaulted: bool,
                       min_memory_limit: Any, why_minimum: str) -> Iterator[Problem]:
    """A container's requests and limits: known resources, sane amounts, each request at most its limit."""
    for kind, amounts in (("requests", requests), ("limits", limits)):
        for name, quantity in amounts.items():
            at = f"{key}.{kind}{kube.key_path(name)}"
            if name not in RESOURCE_NAMES:
                yield (at, f"unknown resource; use {', '.join(RESOURCE_NAMES)}")
                continue
            amount = kube.parse_quantity(quantity)
            if amount <= 0:
                yield (at, f"{quantity} must be more than 0; remove the key for no {kind[:-1]}")
            elif name == "cpu" and amount < kube.parse_quantity("1m"):
                yield (at, f"{quantity} is less than the smallest CPU amount (1m); write e.g. 100m")
            elif name != "cpu" and amount != amount.to_integral_value():
                yield (at, f"{quantity} is {amount} bytes, not a whole number ('m' means milli, not mega); "
                       f"write e.g. {quantity[:-1]}Mi" if str(quantity).endswith("m") else
                       f"{quantity} is not a whole number of bytes; write e.g. 512Mi")
    limit = limits.get("memory")
    if limit is not None and _positive(limit) and kube.parse_quantity(limit) < min_memory_limit:
        yield (f"{key}.limits.memory", f"{limit} {why_minimum}")
    for name in RESOURCE_NAMES:
        request, limit = requests.get(name), limits.get(name)
        if request is None or limit is None or not (_positive(request) and _positive(limit)):
            continue
        if kube.parse_quantity(request) > kube.parse_quantity(limit):
            origin = "the default request" if defaulted else "the request"
            yield (f"{key}.requests{kube.key_path(name)}",
                   f"{origin} {request} is more than {key}.limits.{name} ({limit}), which Kubernetes refuses; "
                   f"set {key}.requests.{name} to at most {limit}, or raise the limit")


def resources_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    resources = config.resources
    yield from _resource_problems(
        "resources", resources.requests, resources.limits, "requests" not in resources.model_fields_set,
        MIN_MEMORY_LIMIT, "is less than Langflow needs to start (about 1.8 GiB for 1.6, 1.1 GiB for 1.13), so the "
        "pod would be OOM-killed on every start; set at least 1Gi (2Gi or more for 1.6)")


MIN_PROXY_MEMORY_LIMIT = kube.parse_quantity("32Mi")


def proxy_resources_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    """oauth2-proxy's and the ambassador's containers: the same checks as Langflow's, a proxy's minimum."""
    for key, resources in (("sso.oauth2_proxy.resources", config.sso.oauth2_proxy.resources),
                           ("ambassador.resources", config.ambassador.resources)):
        unknown = sorted(set(resources) - {"requests", "limits"})
        for name in unknown:
            yield (f"{key}.{name}", "unknown key; use requests and limits")
        if not unknown:
            yield from _resource_problems(key, resources.get("requests", {}), resources.get("limits", {}), False,
                                          MIN_PROXY_MEMORY_LIMIT, "is too little for a proxy to start; set at least "
                                          "32Mi (64Mi or more)")


def ambassador_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    """With the ambassador on, Langflow is private: API clients reach the ambassador, never Langflow itself."""
    if not config.ambassador.enabled:
        return
    for index, namespace in enumerate(config.network_policies.api_client_namespaces):
        yield (f"network_policies.api_client_namespaces[{index}]",
               f"with the ambassador on, {namespace!r} would reach Langflow past it (no request id, its own API key); "
               "move it to ambassador.client_namespaces (the shared ambassador) or ambassador.sidecar_namespaces")
    if not config.network_policies.enabled and config.ambassador.client_namespaces:
        yield ("network_policies.enabled", "with NetworkPolicies off, nothing keeps API clients from calling "
               "Langflow past the ambassador; turn them on (Langflow stays private only then)")


def _positive(quantity: str) -> bool:
    try:
        return kube.parse_quantity(quantity) > 0
    except ValueError:
        return False


def _size_problem(size_text: str, minimum: Any, minimum_text: str, example: str) -> Optional[str]:
    size = kube.parse_quantity(size_text)
    if size != size.to_integral_value():
        return f"{size_text!r} is not a whole number of bytes ('m' means milli); write e.g. {example}"
    if size < minimum:
        return f"{size_text!r} is too small (Kubernetes refuses 0); use at least {minimum_text}, e.g. {example}"
    return None


def storage_size_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    problem = _size_problem(config.storage.size, MIN_STORAGE, "100Mi", "1Gi")
    if problem:
        yield ("storage.size", problem.replace("is too small", "is too small for Langflow's data"))


def database_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    """The PostgreSQL component's volumes and resources."""
    if config.database.type != "postgresql":
        return
    postgres = config.database.postgresql
    key = "database.postgresql"
    if postgres.mode == "in-cluster":
        in_cluster = postgres.in_cluster
        problem = _size_problem(in_cluster.storage.size, MIN_DATABASE_STORAGE, "1Gi", "10Gi")
        if problem:
            yield (f"{key}.in_cluster.storage.size", problem)
        yield from _resource_problems(
            f"{key}.in_cluster.resources", in_cluster.resources.get("requests", {}),
            in_cluster.resources.get("limits", {}), "resources" not in in_cluster.model_fields_set,
            MIN_DATABASE_MEMORY, "is too little for PostgreSQL's shared buffers and connections; set at least 256Mi")
    elif postgres.mode == "cloudnative-pg":
        problem = _size_problem(postgres.cloudnative_pg.storage.size, MIN_DATABASE_STORAGE, "1Gi", "10Gi")
        if problem:
            yield (f"{key}.cloudnative_pg.storage.size", problem)


# --- rules across keys ---------------------------------------------------------------

def sqlite_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    if config.database.type != "sqlite":
        return
    if config.replicas != 1:
        yield ("replicas", "SQLite allows exactly one replica; set replicas: 1 or database.type: url")
    if config.runtime.workers != 1:
        yield ("runtime.workers", "SQLite allows one worker; set runtime.workers: 1 or database.type: url")
    if not config.storage.enabled:
        yield ("storage.enabled", "SQLite keeps its database on the data volume; without it every restart "
               "loses all flows and users. Set storage.enabled: true")


def shared_volume_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    """Several replicas share what Langflow keeps on disk: uploaded files, profile pictures."""
    storage = config.storage
    if config.database.type == "sqlite" or config.replicas == 1:
        return
    if not storage.enabled:
        yield ("storage.enabled", f"with {config.replicas} replicas each pod would keep its own uploaded files, so a "
               "file uploaded through one is missing in the others; set storage.enabled: true with "
               "storage.access_mode: ReadWriteMany (or replicas: 1)")
    elif storage.access_mode != "ReadWriteMany":
        yield ("storage.access_mode", f"{config.replicas} replicas cannot share a {storage.access_mode} volume; use "
               "ReadWriteMany (a storage class that offers it, e.g. NFS or CephFS), or replicas: 1")


def exposure_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    """Nothing publishes Langflow without a sign-in in front of it."""
    sso = config.sso
    if config.service.type != "ClusterIP":
        if sso.enabled and not sso.allow_exposed_langflow_service:
            yield ("service.type", f"{config.service.type} publishes Langflow past the single sign-on; keep "
                   "service.type: ClusterIP (people come in through the ingress and oauth2-proxy), or set "
                   "sso.allow_exposed_langflow_service: true")
        elif not config.auth.enabled and not sso.enabled:
            yield ("service.type", f"{config.service.type} exposes Langflow outside the cluster while auth.enabled is "
                   "false, so anyone reaching it can run code; set auth.enabled: true or service.type: ClusterIP")
    if config.ingress.enabled and not config.auth.enabled and not sso.enabled:
        yield ("ingress.enabled", "the Ingress would publish Langflow with no sign-in at all (login is off and SSO "
               "is off); set sso.enabled: true, or auth.enabled: true")


def sso_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    if not config.sso.enabled:
        return
    if not config.ingress.enabled:
        yield ("sso.enabled", "single sign-on works through the Ingress (its host gives the callback address); set "
               "ingress.enabled: true with your hosts")
    elif config.ingress.tls.mode == "none":
        yield ("ingress.tls.mode", "single sign-on needs HTTPS (secure cookies, https callbacks); set "
               "ingress.tls.mode: cert-manager or secret")


PER_USER_MINIMUM = ".".join(map(str, PER_USER_SINCE))
# Webhooks need an API key (WEBHOOK_AUTH_ENABLE, default true) in lfx 1.13.0; langflow-base 0.6.4 (Langflow 1.6.4)
# has no such setting and runs every webhook as the flow's owner. Checked in the released wheels.
WEBHOOK_AUTH_SINCE = (1, 13)


def sso_identity_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    """Per-user identity needs a Langflow that verifies SSO tokens, where logins are checked at all."""
    mode = identity_mode(config.sso, config.image.tag, config.auth.enabled)
    identity = config.sso.identity
    if mode == "per-user":
        if version_before(config.image.tag, PER_USER_SINCE):
            yield ("sso.identity.mode", f"per-user needs Langflow {PER_USER_MINIMUM} or later (external "
                   f"authentication); Langflow {config.image.tag} ignores it, so everyone would be refused: set "
                   f"image.tag to {PER_USER_MINIMUM}.0 or later, or sso.identity.mode: shared")
        if not config.auth.enabled:
            yield ("sso.identity.mode", "per-user needs Langflow's login on (it checks SSO tokens only where logins "
                   "are checked; with login off everyone is the superuser): set auth.enabled: true, or "
                   "sso.identity.mode: shared")
    elif mode == "shared":
        for key in ("username_claim", "access", "api_keys"):
            if key in identity.model_fields_set:
                yield (f"sso.identity.{key}", "only used with sso.identity.mode: per-user (mode is shared: Langflow "
                       "does not know who signed in); remove it, or set mode: per-user")


def backups_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    backups, database = config.backups, config.database
    if backups.enabled:
        if database.type == "url":
            yield ("backups.enabled", "the Jobs need to know the database: with your own URL Secret they cannot; use "
                   "database.type: postgresql with mode external (same server, the chart's keys), or back it up yourself")
        elif database.type == "postgresql" and database.postgresql.mode == "cloudnative-pg" \
                and database.postgresql.cloudnative_pg.volume_snapshot_class is None:
            yield ("backups.enabled", "CloudNativePG backs up with the operator's own Backup objects, as volume "
                   "snapshots: set database.postgresql.cloudnative_pg.volume_snapshot_class to a VolumeSnapshotClass "
                   "of the cluster")
    if backup_engine(backups, database) in ("sqlite", "postgresql"):
        problem = _size_problem(backups.volume.size, MIN_DATABASE_STORAGE, "1Gi", "10Gi")
        if problem:
            yield ("backups.volume.size", problem.replace("is too small", "is too small for database backups"))


def namespace_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    if config.create_namespace and config.namespace in PRESET_NAMESPACES:
        yield ("namespace", f"{config.namespace!r} exists in every cluster and was not created by this program, so "
               "it must not be relabelled or protected; use a namespace of Langflow's own (e.g. langflow), or "
               "set create_namespace: false to deploy into it as it is")


def login_off_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    auth = config.auth
    if auth.enabled:
        return
    for field in ("superuser", "superuser_password"):
        if field in auth.model_fields_set:
            yield (f"auth.{field}", "only used when auth.enabled is true (with login off Langflow ignores it); "
                   "remove it or set auth.enabled: true")


def old_langflow_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    """Allowed outside the range, a release before 1.6 still silently skips the flows with login on."""
    if config.auth.enabled and config.flows.source != "none" and version_before(config.image.tag, (1, 6)):
        yield ("image.tag", f"Langflow {config.image.tag} skips loading flows when auth is on (fixed in 1.6.0); "
               "use 1.6.0 or later, or flows.source: none")


def flows_mount_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    if config.flows.source == "none":
        return
    for index, mount in enumerate(config.extra_volume_mounts):
        path = mount.get("mountPath")
        if isinstance(path, str) and path.startswith("/") and kube.paths_overlap(path, config.flows.mount_path) \
                and not any(kube.paths_overlap(path, p) for p in MANAGED_PATHS):  # reported already
            yield (f"extra_volume_mounts[{index}].mountPath",
                   f"{path} overlaps {config.flows.mount_path}, where the program mounts the flows; choose another path")


def namespace_lists_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    """Namespace lists that name the stack's own namespace: an object registered twice, or a namespace-wide opening."""
    lists = (("ambassador.sidecar_namespaces", config.ambassador.sidecar_namespaces,
              "the key Secret is already there (two objects of one name would stop the update), and every pod of the "
              "namespace, the database's too, would reach Langflow"),
             ("ambassador.client_namespaces", config.ambassador.client_namespaces,
              "every pod of the namespace, the database's too, would reach the ambassador"),
             ("network_policies.api_client_namespaces", config.network_policies.api_client_namespaces,
              "every pod of the namespace, the database's too, would reach Langflow"))
    for key, namespaces, why in lists:
        for index, namespace in enumerate(namespaces):
            if namespace == config.namespace:
                yield (f"{key}[{index}]", f"{namespace!r} is the stack's own namespace: {why}; run the client in a "
                       "namespace of its own and list that one")


def sign_in_routes_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    """With SSO, each host must send /oauth2/ to oauth2-proxy (the callback), and nothing may skip the sign-in into a
    Langflow that has no login of its own."""
    if not config.sso.enabled or not config.ingress.enabled:
        return
    for index, host in enumerate(config.ingress.hosts):
        if not any(routes(path.path, path.path_type, CALLBACK_PATH) for path in host.paths):
            yield (f"ingress.hosts[{index}].paths", f"no path of {host.host} routes {CALLBACK_PATH}, where Dex sends "
                   "people back after they sign in, so nobody could sign in; add {path: /oauth2, path_type: Prefix} "
                   "or use path: /")
    if config.sso.api_paths and not config.auth.enabled:
        yield ("sso.api_paths", f"with auth.enabled false Langflow has no login: its auto-login makes whoever "
               f"reaches it the superuser, so {', '.join(config.sso.api_paths)} would reach a Langflow that knows "
               "no one, past the sign-in. Set auth.enabled: true (API clients then need a user's API key), or "
               "sso.api_paths: []")
    if version_before(config.image.tag, WEBHOOK_AUTH_SINCE):
        for index, path in enumerate(config.sso.api_paths):
            if path.startswith("/api/v1/webhook/"):
                yield (f"sso.api_paths[{index}]", f"Langflow {config.image.tag} runs a webhook without any key (as "
                       "the flow's owner), so anyone could run flows past the sign-in; use Langflow "
                       f"{'.'.join(map(str, WEBHOOK_AUTH_SINCE))}.0 or later (webhooks need an API key there), or "
                       "remove the path")


def ingress_annotations_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    """The Ingress's annotations: valid keys, none that the program sets from other keys, none that route around the
    sign-in or inject configuration into the ingress controller."""
    yield from _annotations("ingress.annotations", config.ingress.annotations)
    on_ingress = config.ingress.enabled
    for key, names in (("ingress.annotations", config.ingress.annotations), ("annotations", config.annotations)):
        for name in names:
            at = f"{key}{kube.key_path(name)}"
            source = PROGRAM_ANNOTATIONS.get(name.lower())
            if source is not None:
                yield (at, f"the program sets it from {source}; change that instead, and remove it")
            elif on_ingress or key == "ingress.annotations":
                problem = ingress_annotation_problem(name)
                if problem:
                    yield (at, problem)


def _set_keys(section: Any, keys: Iterable[str]) -> list[str]:
    """The keys of `section` the stack file sets (defaults are never a problem)."""
    return [key for key in keys if key in section.model_fields_set]


def unused_settings_rule(config: LangflowStackConfig) -> Iterator[Problem]:
    """A key that a switch elsewhere turns off does nothing: say so, rather than let it look configured."""
    engine = backup_engine(config.backups, config.database)
    backups = config.backups
    if engine is None:
        for key in _set_keys(backups, ("snapshots_kept", "schedule", "scheduled_kept", "volume")):
            if key == "schedule" and backups.schedule is None:
                continue
            yield (f"backups.{key}", "has no effect: backups are off for this database (see backups.enabled); "
                   "remove it, or turn backups on")
    elif engine == "cloudnative-pg" and "volume" in backups.model_fields_set:
        yield ("backups.volume", "has no effect with CloudNativePG: the operator keeps its backups as volume "
               "snapshots (cloudnative_pg.volume_snapshot_class); remove it")
    # Every key of a section with an `enabled` switch, but those its own model already refuses while it is off.
    for name in ("storage", "metrics", "network_policies", "ingress", "sso", "ambassador"):
        section = getattr(config, name)
        if section.enabled:
            continue
        own = AMBASSADOR_OFF_KEYS if name == "ambassador" else ()
        for key in _set_keys(section, (k for k in type(section).model_fields if k != "enabled" and k not in own)):
            yield (f"{name}.{key}", f"has no effect while {name} is off; remove it, or set {name}.enabled: true")
    if identity_mode(config.sso, config.image.tag, config.auth.enabled) == "shared" \
            and "id_token_expiry_minutes" in config.sso.dex.model_fields_set:
        yield ("sso.dex.id_token_expiry_minutes", "only used with sso.identity.mode: per-user (the sign-in then ends "
               "before Dex's token); remove it, or use per-user")


RULES: tuple[Callable[[LangflowStackConfig], Iterable[Problem]], ...] = (
    namespace_rule, resources_rule, node_selector_rule, tolerations_rule, affinity_rule,
    service_annotations_rule, storage_size_rule, database_rule, login_off_rule, extra_env_rule, extra_volumes_rule,
    extra_volume_mounts_rule, labels_rule, annotations_rule,
    backups_rule, sqlite_rule, shared_volume_rule, exposure_rule, sso_rule, sso_identity_rule, old_langflow_rule,
    flows_mount_rule,
    proxy_resources_rule, ambassador_rule,
    namespace_lists_rule, sign_in_routes_rule, ingress_annotations_rule, unused_settings_rule,
)


def rule_problems(config: PartialConfig) -> list[Problem]:
    """Every rule's problems; a rule reading a section that failed validation is skipped."""
    problems: list[Problem] = []
    for rule in RULES:
        try:
            problems += list(rule(config))  # type: ignore[arg-type]
        except Unchecked:
            continue
        except Exception as error:  # noqa: BLE001 - never a traceback, and never a pass either
            name = rule.__name__.removesuffix("_rule")
            problems.append((name, f"could not be checked ({type(error).__name__}: {error}); fix the value's shape, "
                             "and report this message as a bug"))
    return problems


# --- warnings: allowed, but worth a second look in every preview ----------------------

def warnings(config: LangflowStackConfig) -> list[str]:
    out = []
    if config.auth.enabled and config.auth.new_user_is_active:
        out.append("auth.new_user_is_active is on: anyone who reaches Langflow can register an active account "
                   "(POST /api/v1/users/ needs no credentials). Keep it off unless only trusted people reach it.")
    if config.rollout.timeout_seconds < STARTUP_BUDGET_SECONDS:
        out.append(f"rollout.timeout_seconds is {config.rollout.timeout_seconds} s, below the {STARTUP_BUDGET_SECONDS} s "
                   "Langflow may take to start: a slow but healthy start fails the release.")
    if backup_engine(config.backups, config.database) is None and config.database.type != "url":
        cloudnative = config.database.type == "postgresql" and config.database.postgresql.mode == "cloudnative-pg"
        out.append("no snapshot is taken before a Langflow version change, so `make rollback` across one is refused, "
                   "and there are no scheduled backups: " + (
                       "set database.postgresql.cloudnative_pg.volume_snapshot_class" if cloudnative
                       else "set backups.enabled: true"))
    if identity_mode(config.sso, config.image.tag, config.auth.enabled) == "shared":
        who = ("Langflow's own login decides who is who (people sign in twice)" if config.auth.enabled
               else "everyone who signs in is Langflow's superuser")
        out.append(f"sso.identity.mode is shared: Langflow does not know who signed in, so {who}. With Langflow "
                   f"{PER_USER_MINIMUM} or later, per-user gives each person their own user.")
    out += network_warnings(config.network_policies, config.sso, config.database,
                            kubernetes_api=config.ambassador.enabled and not key_from_env(config.image.tag))
    out += edge_warnings(config.sso)
    return out
