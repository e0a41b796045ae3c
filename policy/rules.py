"""The policy pack's decisions, as plain functions over Kubernetes objects in wire form.

Nothing here knows the product (components/, settings/): the rules judge the resources a stack
registers, whoever made them. A resource rule takes the Pulumi type (`kubernetes:apps/v1:Deployment`)
and the resource's inputs (camelCase, as the API server reads them) and returns violation messages; a
stack rule takes every resource of the stack and returns (message, urn) pairs.

Values that are not known yet (in a preview, what depends on another resource's outputs) arrive as
`UNKNOWN`: a rule never reports a violation on an unknown value. Every message names the object
(kind, namespace/name), the field and the fix.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Optional


class _Unknown:
    """A value Pulumi does not know yet (preview)."""

    _instance: Optional["_Unknown"] = None

    def __new__(cls) -> "_Unknown":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


def is_unknown(value: Any) -> bool:
    return value is UNKNOWN


@dataclass(frozen=True)
class Resource:
    """One resource of a stack, for the stack rules."""

    type: str
    props: dict[str, Any]
    urn: str = ""
    name: str = ""  # the Pulumi resource name


# --- reading objects -----------------------------------------------------------------------------

def get(obj: Any, *path: str) -> Any:
    """The value at `path`; None where something is missing, UNKNOWN where something is unknown."""
    for key in path:
        if is_unknown(obj):
            return UNKNOWN
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def parse_type(resource_type: str) -> tuple[str, str]:
    """(API group, kind) of a Pulumi Kubernetes type: `kubernetes:apps/v1:Deployment` -> ("apps", "Deployment");
    the core group is "core". ("", "") for anything that is not a Kubernetes object."""
    parts = resource_type.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes" or "/" not in parts[1]:
        return "", ""
    return parts[1].rsplit("/", 1)[0], parts[2]


# Where each pod-bearing kind keeps its pod template: (metadata path, spec path).
_POD_PATHS: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    ("core", "Pod"): (("metadata",), ("spec",)),
    ("core", "PodTemplate"): (("template", "metadata"), ("template", "spec")),
    ("core", "ReplicationController"): (("spec", "template", "metadata"), ("spec", "template", "spec")),
    ("apps", "Deployment"): (("spec", "template", "metadata"), ("spec", "template", "spec")),
    ("apps", "StatefulSet"): (("spec", "template", "metadata"), ("spec", "template", "spec")),
    ("apps", "DaemonSet"): (("spec", "template", "metadata"), ("spec", "template", "spec")),
    ("apps", "ReplicaSet"): (("spec", "template", "metadata"), ("spec", "template", "spec")),
    ("batch", "Job"): (("spec", "template", "metadata"), ("spec", "template", "spec")),
    ("batch", "CronJob"): (("spec", "jobTemplate", "spec", "template", "metadata"),
                           ("spec", "jobTemplate", "spec", "template", "spec")),
}
# Kinds that run pods, for the NetworkPolicy rule (a PodTemplate runs nothing by itself).
WORKLOAD_KINDS = {key for key in _POD_PATHS if key != ("core", "PodTemplate")}


def pod_spec_path(resource_type: str) -> Optional[tuple[str, ...]]:
    paths = _POD_PATHS.get(parse_type(resource_type))
    return paths[1] if paths else None


def pod_labels(resource_type: str, props: dict[str, Any]) -> Any:
    """The labels of the pods a workload runs (its template's); None if it is no workload."""
    paths = _POD_PATHS.get(parse_type(resource_type))
    if paths is None:
        return None
    labels = get(props, *paths[0], "labels")
    return {} if labels is None else labels


def number(value: Any) -> Optional[float]:
    """A number as Pulumi hands it over (protobuf numbers arrive as floats: 2.0); None otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def namespace_of(props: dict[str, Any]) -> Any:
    namespace = get(props, "metadata", "namespace")
    return "" if namespace is None else namespace


def describe(resource_type: str, props: dict[str, Any], name: Optional[str] = None) -> str:
    """`Deployment langflow/langflow`: the kind, then the namespace and name as kubectl shows them; an object
    Pulumi names itself (its name not known yet) goes by its Pulumi resource name."""
    _, kind = parse_type(resource_type)
    kind = kind or resource_type
    object_name = get(props, "metadata", "name")
    if not isinstance(object_name, str) or not object_name:
        object_name = f"{name} (Pulumi name)" if name else "(unnamed)"
    namespace = namespace_of(props)
    where = f"{namespace}/" if isinstance(namespace, str) and namespace else ""
    return f"{kind} {where}{object_name}"


@dataclass(frozen=True)
class Container:
    path: str  # e.g. spec.template.spec.containers[0]
    name: str
    spec: dict[str, Any]


def containers(pod_spec: Any, path: str, *, ephemeral: bool = False) -> Iterator[Container]:
    """The pod's containers and init containers (and ephemeral ones, if asked), skipping unknown ones."""
    lists = ["containers", "initContainers"] + (["ephemeralContainers"] if ephemeral else [])
    for field in lists:
        items = get(pod_spec, field)
        if not isinstance(items, list):
            continue
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            name = item.get("name")
            yield Container(f"{path}.{field}[{index}]", name if isinstance(name, str) else f"#{index}", item)


def _pod(resource_type: str, props: dict[str, Any]) -> Optional[tuple[Any, str]]:
    path = pod_spec_path(resource_type)
    if path is None:
        return None
    return get(props, *path), ".".join(path)


# --- mandatory: pinned images --------------------------------------------------------------------

MOVING_TAGS = ("latest", "main", "master", "stable", "edge", "nightly", "dev")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")


def image_problem(image: Any) -> Optional[str]:
    """Why `image` is not pinned, or None (pinned, or not known yet)."""
    if is_unknown(image) or image is None:
        return None
    if not isinstance(image, str) or not image.strip():
        return "is empty"
    if "@" in image:
        digest = image.split("@", 1)[1]
        return None if _DIGEST.fullmatch(digest) else f"has a malformed digest '{digest}'"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag (Kubernetes then pulls ':latest')"
    tag = last.rsplit(":", 1)[1]
    if tag.lower() in MOVING_TAGS:
        return f"uses the moving tag '{tag}'"
    return None


_PIN_FIX = "pin a version tag (e.g. repository:1.2.3) or a digest (repository@sha256:...)"


def pinned_images(resource_type: str, props: dict[str, Any], name: Optional[str] = None) -> list[str]:
    what = describe(resource_type, props, name)
    out = []
    group, kind = parse_type(resource_type)
    if (group, kind) == ("postgresql.cnpg.io", "Cluster"):
        image = get(props, "spec", "imageName")
        if image is None and get(props, "spec", "imageCatalogRef") is None and not is_unknown(get(props, "spec")):
            out.append(f"{what}: spec.imageName is not set, so the operator runs its own default image, which "
                       f"changes with the operator: set spec.imageName and {_PIN_FIX}.")
        problem = image_problem(image)
        if problem:
            out.append(f"{what}: spec.imageName '{image}' {problem}: {_PIN_FIX}.")
        return out
    pod = _pod(resource_type, props)
    if pod is None:
        return out
    spec, path = pod
    for c in containers(spec, path, ephemeral=True):
        image = c.spec.get("image")
        problem = image_problem(image)
        if problem:
            out.append(f"{what}: container '{c.name}' ({c.path}.image) image '{image}' {problem}: {_PIN_FIX}.")
    volumes = get(spec, "volumes")
    for index, volume in enumerate(volumes if isinstance(volumes, list) else []):
        reference = get(volume, "image", "reference")
        problem = image_problem(reference) if reference is not None else None
        if problem:
            out.append(f"{what}: volume '{get(volume, 'name')}' ({path}.volumes[{index}].image.reference) image "
                       f"'{reference}' {problem}: {_PIN_FIX}.")
    return out


# --- mandatory: requests and limits --------------------------------------------------------------

def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def container_resources(resource_type: str, props: dict[str, Any], name: Optional[str] = None) -> list[str]:
    pod = _pod(resource_type, props)
    if pod is None:
        return []
    what = describe(resource_type, props, name)
    out = []
    for c in containers(*pod):
        resources = c.spec.get("resources")
        if is_unknown(resources):
            continue
        wanted = [("requests", "cpu", "e.g. 100m"), ("requests", "memory", "e.g. 256Mi"),
                  ("limits", "memory", "at least the memory request")]
        missing = []
        for section, key, example in wanted:
            values = get(resources, section)
            if is_unknown(values):
                continue
            if _missing(get(values, key)):
                missing.append((f"resources.{section}.{key}", example))
        if missing:
            fields = ", ".join(f"{c.path}.{field}" for field, _ in missing)
            fix = "; ".join(f"{field} ({example})" for field, example in missing)
            out.append(f"{what}: container '{c.name}' has no {fields}: set {fix}.")
    return out


# --- mandatory: Pod Security "restricted" -------------------------------------------------------

RESTRICTED_VOLUME_TYPES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                           "projected", "secret")
ALLOWED_ADDED_CAPABILITIES = ("NET_BIND_SERVICE",)
ALLOWED_SECCOMP = ("RuntimeDefault", "Localhost")


def pod_security(resource_type: str, props: dict[str, Any], name: Optional[str] = None) -> list[str]:
    pod = _pod(resource_type, props)
    if pod is None:
        return []
    spec, path = pod
    if is_unknown(spec) or not isinstance(spec, dict):
        return []
    what = describe(resource_type, props, name)
    out = []

    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field) is True:
            out.append(f"{what}: {path}.{field} is true: remove it (Pod Security \"restricted\" shares no host "
                       "namespace).")
    volumes = spec.get("volumes")
    for index, volume in enumerate(volumes if isinstance(volumes, list) else []):
        if not isinstance(volume, dict):
            continue
        kinds = [k for k in volume if k != "name"]
        for k in kinds:
            if k not in RESTRICTED_VOLUME_TYPES:
                out.append(f"{what}: volume '{volume.get('name')}' ({path}.volumes[{index}].{k}) is of type {k}, "
                           f"which Pod Security \"restricted\" refuses: use one of {', '.join(RESTRICTED_VOLUME_TYPES)} "
                           "(a persistentVolumeClaim instead of a hostPath).")

    pod_context = spec.get("securityContext")
    pod_context = {} if pod_context is None else pod_context
    pod_non_root = get(pod_context, "runAsNonRoot")
    pod_seccomp = get(pod_context, "seccompProfile", "type")
    if pod_non_root is False:
        out.append(f"{what}: {path}.securityContext.runAsNonRoot is false: set it to true.")
    if number(get(pod_context, "runAsUser")) == 0:
        out.append(f"{what}: {path}.securityContext.runAsUser is 0 (root): set a non-zero UID.")
    if isinstance(pod_seccomp, str) and pod_seccomp not in ALLOWED_SECCOMP:
        out.append(f"{what}: {path}.securityContext.seccompProfile.type is {pod_seccomp}: set RuntimeDefault "
                   "(or Localhost).")

    for c in containers(spec, path, ephemeral=True):
        context = c.spec.get("securityContext")
        if is_unknown(context):
            continue
        context = {} if context is None else context
        at = f"container '{c.name}' ({c.path}.securityContext"

        non_root = context.get("runAsNonRoot")
        if non_root is False:
            out.append(f"{what}: {at}.runAsNonRoot) is false: set it to true.")
        elif non_root is None and pod_non_root is None:
            out.append(f"{what}: {at}.runAsNonRoot) is not set, nor {path}.securityContext.runAsNonRoot: set "
                       "runAsNonRoot: true on the pod or the container.")
        if number(context.get("runAsUser")) == 0:
            out.append(f"{what}: {at}.runAsUser) is 0 (root): set a non-zero UID.")
        if context.get("privileged") is True:
            out.append(f"{what}: {at}.privileged) is true: remove it.")
        escalation = context.get("allowPrivilegeEscalation")
        if escalation is not False and not is_unknown(escalation):
            state = "is true" if escalation is True else "is not set"
            out.append(f"{what}: {at}.allowPrivilegeEscalation) {state}: set it to false.")

        capabilities = context.get("capabilities")
        if not is_unknown(capabilities):
            drop = get(capabilities, "drop")
            unknown_drop = is_unknown(drop) or (isinstance(drop, list) and any(map(is_unknown, drop)))
            if not unknown_drop and not (isinstance(drop, list) and "ALL" in drop):
                out.append(f"{what}: {at}.capabilities.drop) does not drop ALL: set capabilities.drop: [ALL].")
            add = get(capabilities, "add")
            if isinstance(add, list):
                extra = [cap for cap in add if not is_unknown(cap) and cap not in ALLOWED_ADDED_CAPABILITIES]
                if extra:
                    out.append(f"{what}: {at}.capabilities.add) adds {', '.join(map(str, extra))}: add none "
                               "(NET_BIND_SERVICE is the only one Pod Security \"restricted\" allows).")

        seccomp = get(context, "seccompProfile", "type")
        if isinstance(seccomp, str) and seccomp not in ALLOWED_SECCOMP:
            out.append(f"{what}: {at}.seccompProfile.type) is {seccomp}: set RuntimeDefault (or Localhost).")
        elif seccomp is None and pod_seccomp is None:
            out.append(f"{what}: {at}.seccompProfile) is not set, nor {path}.securityContext.seccompProfile: set "
                       "seccompProfile.type: RuntimeDefault on the pod or the container.")

        ports = c.spec.get("ports")
        for index, port in enumerate(ports if isinstance(ports, list) else []):
            host_port = number(get(port, "hostPort"))
            if host_port:
                out.append(f"{what}: container '{c.name}' ({c.path}.ports[{index}].hostPort) is {host_port:g}: "
                           "remove it and reach the pod through a Service.")
    return out


# --- mandatory: Ingress with TLS ------------------------------------------------------------------

def _host_covered(host: str, tls_hosts: list[Any]) -> bool:
    for pattern in tls_hosts:
        if is_unknown(pattern) or pattern == host:
            return True
        if isinstance(pattern, str) and pattern.startswith("*.") and "." in host:
            if host.split(".", 1)[1] == pattern[2:]:
                return True
    return False


def ingress_tls(resource_type: str, props: dict[str, Any], name: Optional[str] = None) -> list[str]:
    group, kind = parse_type(resource_type)
    if kind != "Ingress" or group not in ("networking.k8s.io", "extensions"):
        return []
    spec = get(props, "spec")
    tls = get(spec, "tls")
    if is_unknown(spec) or is_unknown(tls):
        return []
    what = describe(resource_type, props, name)
    rules = get(spec, "rules")
    rules = rules if isinstance(rules, list) else []
    known_hosts = [get(r, "host") for r in rules if isinstance(get(r, "host"), str)]
    if not tls:
        hosts = ", ".join(known_hosts) or "its hosts"
        return [f"{what}: spec.tls is not set, so it serves plain HTTP: add spec.tls with a certificate Secret "
                f"(secretName) for {hosts}."]
    tls_hosts: list[Any] = []
    default_certificate = False
    for entry in tls if isinstance(tls, list) else []:
        hosts = get(entry, "hosts")
        if is_unknown(entry) or is_unknown(hosts):
            return []  # cannot tell what it covers
        if not hosts:
            default_certificate = True
        else:
            tls_hosts += hosts
    out = []
    for index, rule in enumerate(rules):
        host = get(rule, "host")
        if is_unknown(host) or is_unknown(rule):
            continue
        if host is None or host == "":
            if not default_certificate:
                out.append(f"{what}: spec.rules[{index}] has no host (it answers for any host) and no spec.tls entry "
                           "without hosts covers it: give the rule a host and list it in spec.tls[].hosts.")
        elif not _host_covered(host, tls_hosts):
            out.append(f"{what}: spec.rules[{index}].host '{host}' is not in any spec.tls[].hosts: add it to "
                       "spec.tls (with a certificate that names it).")
    return out


# --- mandatory: no credentials as literals ------------------------------------------------------

_CREDENTIAL_SUFFIXES = ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "CREDENTIAL", "CREDENTIALS",
                        "APIKEY")
_CREDENTIAL_KEYS = ("API", "PRIVATE", "SECRET", "ACCESS", "ENCRYPTION", "SIGNING", "MASTER", "AUTH", "LICENSE")
_ONLY_REFERENCES = re.compile(r"(?:\$\([A-Za-z_][A-Za-z0-9_.-]*\))+")
_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:([^/@\s]+)@")
_FLAG = re.compile(r"-{0,2}([A-Za-z][A-Za-z0-9_.-]*)=(.*)", re.DOTALL)


def credential_name(name: str) -> bool:
    """Does an env name or a flag name look like it holds a credential? It must end in the word:
    DB_PASSWORD, client-secret, OPENAI_API_KEY, PGPASSWORD; not ACCESS_TOKEN_EXPIRE_SECONDS, PASSWORD_FILE."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name.upper()) if w]
    if not words:
        return False
    if any(words[-1].endswith(suffix) for suffix in _CREDENTIAL_SUFFIXES):
        return True
    return words[-1] == "KEY" and len(words) > 1 and words[-2] in _CREDENTIAL_KEYS


def _literal(value: Any) -> bool:
    """A value written out, not a reference to another variable (`$(VAR)`) and not empty."""
    return isinstance(value, str) and value.strip() != "" and not _ONLY_REFERENCES.fullmatch(value.strip())


def url_with_password(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    for match in _URL_PASSWORD.finditer(value):
        password = urllib.parse.unquote(match.group(1))
        if _literal(password):
            return True
    return False


def literal_credentials(resource_type: str, props: dict[str, Any], name: Optional[str] = None) -> list[str]:
    pod = _pod(resource_type, props)
    if pod is None:
        return []
    what = describe(resource_type, props, name)
    out = []
    for c in containers(*pod, ephemeral=True):
        env = c.spec.get("env")
        for index, entry in enumerate(env if isinstance(env, list) else []):
            variable, value = get(entry, "name"), get(entry, "value")
            if not isinstance(variable, str) or not _literal(value) or get(entry, "valueFrom") is not None:
                continue
            at = f"container '{c.name}' ({c.path}.env[{index}], {variable})"
            if credential_name(variable):
                out.append(f"{what}: {at} holds a credential as a literal value: put it in a Secret and use "
                           "valueFrom.secretKeyRef instead of value.")
            elif url_with_password(value):
                out.append(f"{what}: {at} is a URL with a password in it (user:password@): put the whole URL in a "
                           "Secret and use valueFrom.secretKeyRef instead of value.")
        for field in ("command", "args"):
            items = c.spec.get(field)
            for index, arg in enumerate(items if isinstance(items, list) else []):
                if not isinstance(arg, str):
                    continue
                at = f"container '{c.name}' ({c.path}.{field}[{index}])"
                flag = _FLAG.fullmatch(arg)
                if flag and credential_name(flag.group(1)) and _literal(flag.group(2)):
                    out.append(f"{what}: {at} passes --{flag.group(1).lstrip('-')}= as a literal: put the value in a "
                               "Secret, read it into env with valueFrom.secretKeyRef and pass $(VAR), or use the "
                               "program's own env/file option for it.")
                elif url_with_password(arg):
                    out.append(f"{what}: {at} holds a URL with a password in it (user:password@): read it from a "
                               "Secret (valueFrom.secretKeyRef) and pass $(VAR).")
    return out


# --- label selectors -----------------------------------------------------------------------------

def _all(results: Iterable[Optional[bool]]) -> Optional[bool]:
    """AND over True / False / None (unknown): False wins, then unknown."""
    unknown = False
    for result in results:
        if result is False:
            return False
        if result is None:
            unknown = True
    return None if unknown else True


def selector_matches(selector: Any, labels: Any) -> Optional[bool]:
    """Kubernetes label-selector semantics (matchLabels, matchExpressions In/NotIn/Exists/DoesNotExist); an empty
    selector matches everything. None when unknown values decide it. A missing selector is the caller's call."""
    if is_unknown(selector) or is_unknown(labels):
        return None
    labels = labels if isinstance(labels, dict) else {}
    selector = selector if isinstance(selector, dict) else {}
    match_labels = selector.get("matchLabels")
    expressions = selector.get("matchExpressions")
    if is_unknown(match_labels) or is_unknown(expressions):
        return None

    def label(key: str) -> tuple[bool, Any]:
        return key in labels, labels.get(key)

    def one_label(key: str, value: Any) -> Optional[bool]:
        present, actual = label(key)
        if is_unknown(value) or is_unknown(actual):
            return None
        return present and actual == value

    def one_expression(expression: Any) -> Optional[bool]:
        if not isinstance(expression, dict):
            return None if is_unknown(expression) else False
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if is_unknown(key) or is_unknown(operator) or is_unknown(values) or any(map(is_unknown, values)):
            return None
        present, actual = label(key)
        if is_unknown(actual):
            return None
        if operator == "In":
            return present and actual in values
        if operator == "NotIn":
            return not present or actual not in values
        if operator == "Exists":
            return present
        if operator == "DoesNotExist":
            return not present
        return False  # the API server refuses any other operator

    checks: list[Optional[bool]] = []
    if isinstance(match_labels, dict):
        checks += [one_label(k, v) for k, v in match_labels.items()]
    if isinstance(expressions, list):
        checks += [one_expression(e) for e in expressions]
    return _all(checks)


def service_selects(selector: Any, labels: Any) -> Optional[bool]:
    """A Service's plain-map selector; an empty or missing one selects nothing (endpoints are then manual)."""
    if is_unknown(selector) or is_unknown(labels):
        return None
    if not isinstance(selector, dict) or not selector:
        return False
    return selector_matches({"matchLabels": selector}, labels)


def same_namespace(a: Any, b: Any) -> Optional[bool]:
    if is_unknown(a) or is_unknown(b):
        return None
    return a == b


# --- mandatory (production stacks): nothing serves Langflow without authentication ----------------

NAME_LABEL = "app.kubernetes.io/name"
DEFAULT_PRODUCTION_STACKS = ("prod",)


def stack_name(resources: Iterable[Resource]) -> Optional[str]:
    """The stack, from a URN: `urn:pulumi:<stack>::<project>::<type>::<name>`."""
    for r in resources:
        match = re.match(r"urn:pulumi:([^:]+)::", r.urn or "")
        if match:
            return match.group(1)
    return None


def is_production(stack: Optional[str], production_stacks: Iterable[str]) -> bool:
    if stack is None:
        return False
    # Entries may be written as org/project/stack: the URN holds only the stack.
    return any(stack == entry.split("/")[-1] for entry in production_stacks if isinstance(entry, str))


def _kind(r: Resource) -> tuple[str, str]:
    return parse_type(r.type)


def _labelled(r: Resource, group: str, kind: str, value: str) -> bool:
    return _kind(r) == (group, kind) and get(r.props, "metadata", "labels", NAME_LABEL) == value


def login_required(props: dict[str, Any]) -> Optional[bool]:
    """Langflow's login is on when LANGFLOW_AUTO_LOGIN is "false" (Langflow's default is true, login off); None
    when unknown."""
    spec = get(props, "spec", "template", "spec")
    if is_unknown(spec) or is_unknown(get(spec, "containers")):
        return None
    values = []
    for c in containers(spec, "spec.template.spec"):
        env = c.spec.get("env")
        if is_unknown(env):
            return None
        for entry in env if isinstance(env, list) else []:
            variable = get(entry, "name")
            if is_unknown(variable):
                return None
            if isinstance(variable, str) and variable.upper() == "LANGFLOW_AUTO_LOGIN":
                if get(entry, "valueFrom") is not None:
                    return None  # read from elsewhere: not knowable here
                values.append(get(entry, "value"))
    if any(is_unknown(v) for v in values):
        return None
    return bool(values) and all(isinstance(v, str) and v.strip().lower() == "false" for v in values)


def _upstreams(props: dict[str, Any]) -> list[Any]:
    """oauth2-proxy's --upstream values (flags, or the OAUTH2_PROXY_UPSTREAMS env)."""
    spec = get(props, "spec", "template", "spec")
    if is_unknown(spec) or is_unknown(get(spec, "containers")):
        return [UNKNOWN]
    out: list[Any] = []
    for c in containers(spec, "spec.template.spec"):
        args = c.spec.get("args")
        if is_unknown(args):
            out.append(UNKNOWN)
            continue
        args = args if isinstance(args, list) else []
        for index, arg in enumerate(args):
            if is_unknown(arg):
                out.append(UNKNOWN)
            elif isinstance(arg, str) and arg.startswith("--upstream="):
                out += arg.split("=", 1)[1].split(",")
            elif arg == "--upstream" and index + 1 < len(args):
                out.append(args[index + 1])
        env = c.spec.get("env")
        for entry in env if isinstance(env, list) else []:
            if get(entry, "name") == "OAUTH2_PROXY_UPSTREAMS":
                value = get(entry, "value")
                out += value.split(",") if isinstance(value, str) else [UNKNOWN]
    return out


def _points_at(upstream: Any, service: str, service_namespace: str, proxy_namespace: Any) -> Optional[bool]:
    if is_unknown(upstream) or is_unknown(proxy_namespace):
        return None
    host = urllib.parse.urlsplit(upstream.strip()).hostname if isinstance(upstream, str) else None
    if not host:
        return False
    if host == service.lower():
        return proxy_namespace == service_namespace
    prefix = f"{service}.{service_namespace}".lower()
    return host == prefix or host.startswith(prefix + ".svc")


def _backends(spec: Any) -> Iterator[tuple[str, Any]]:
    """(field, service name) of every backend of an Ingress spec."""
    default = get(spec, "defaultBackend", "service", "name")
    if default is not None:
        yield "spec.defaultBackend.service.name", default
    rules = get(spec, "rules")
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        paths = get(rule, "http", "paths")
        for j, path in enumerate(paths if isinstance(paths, list) else []):
            service = get(path, "backend", "service", "name")
            if service is not None:
                yield f"spec.rules[{i}].http.paths[{j}].backend.service.name", service


def authenticated_langflow(resources: list[Resource], production_stacks: Iterable[str]) -> list[tuple[str, str]]:
    """In a production stack, a Langflow with its login off must sit behind oauth2-proxy and be reachable only
    through it: oauth2-proxy's --upstream is Langflow's Service, no Ingress routes to that Service, and the
    Service is of type ClusterIP."""
    stack = stack_name(resources)
    if not is_production(stack, production_stacks):
        return []
    out: list[tuple[str, str]] = []
    services = [r for r in resources if _kind(r) == ("core", "Service")]
    proxies = [r for r in resources if _labelled(r, "apps", "Deployment", "oauth2-proxy")]
    ingresses = [r for r in resources if _kind(r)[1] == "Ingress"]
    turn_on = "or turn Langflow's login on (env LANGFLOW_AUTO_LOGIN=false; this program: auth.enabled: true)"
    for app in (r for r in resources if _labelled(r, "apps", "Deployment", "langflow")):
        if login_required(app.props) is not False:
            continue
        what = describe(app.type, app.props, app.name)
        namespace = namespace_of(app.props)
        labels = get(app.props, "spec", "template", "metadata", "labels")
        selected = [(s, _all([same_namespace(namespace_of(s.props), namespace),
                              service_selects(get(s.props, "spec", "selector"), labels)])) for s in services]
        if any(hit is None for _, hit in selected):
            continue  # cannot tell which Services serve it yet
        mine = [s for s, hit in selected if hit]
        names = [get(s.props, "metadata", "name") for s in mine]
        if any(not isinstance(n, str) for n in names):
            continue  # a Service Pulumi names itself: its name is not known yet

        in_front: Optional[bool] = False
        for proxy in proxies:
            for upstream in _upstreams(proxy.props):
                for service in names:
                    hit = _points_at(upstream, service, namespace, namespace_of(proxy.props))
                    in_front = True if hit is None or hit else in_front
        if not in_front:
            service = names[0] if names else "<langflow-service>"
            out.append((f"{what} runs Langflow with its login off (spec.template.spec.containers[].env "
                        f"LANGFLOW_AUTO_LOGIN is not \"false\") in production stack '{stack}', and no oauth2-proxy is "
                        f"in front of it: deploy oauth2-proxy (a Deployment labelled {NAME_LABEL}: oauth2-proxy) "
                        f"with --upstream=http://{service}.{namespace}.svc:<port>/ (this program: sso.enabled: "
                        f"true), {turn_on}.", app.urn))
        for s in mine:
            service = get(s.props, "metadata", "name")
            service_type = get(s.props, "spec", "type")
            if isinstance(service_type, str) and service_type != "ClusterIP":
                out.append((f"{describe(s.type, s.props, s.name)}: spec.type is {service_type}, which exposes "
                            f"Langflow ({what}, login off) outside the cluster without authentication: set "
                            f"spec.type: ClusterIP and let people in through oauth2-proxy, {turn_on}.", s.urn))
            for ingress in ingresses:
                if same_namespace(namespace_of(ingress.props), namespace_of(s.props)) is not True:
                    continue
                for field, backend in _backends(get(ingress.props, "spec")):
                    if backend == service:
                        out.append((f"{describe(ingress.type, ingress.props, ingress.name)}: {field} routes "
                                    f"straight to Langflow's Service {service}, whose login is off ({what}): route "
                                    f"it to oauth2-proxy's Service instead, {turn_on}.", ingress.urn))
    return out


# --- advisory: PodDisruptionBudgets ----------------------------------------------------------------

def _replicas(props: dict[str, Any]) -> Any:
    replicas = get(props, "spec", "replicas")
    return 1 if replicas is None else replicas


def disruption_budgets(resources: list[Resource]) -> list[tuple[str, str]]:
    budgets = [r for r in resources if _kind(r) in (("policy", "PodDisruptionBudget"),)]
    out = []
    for r in resources:
        if _kind(r) not in (("apps", "Deployment"), ("apps", "StatefulSet")):
            continue
        replicas = number(_replicas(r.props))
        if replicas is None or replicas <= 1:
            continue
        labels = pod_labels(r.type, r.props)
        namespace = namespace_of(r.props)
        covered: list[Optional[bool]] = []
        for budget in budgets:
            selector = get(budget.props, "spec", "selector")
            if selector is None:
                continue  # policy/v1: a null selector selects no pod
            covered.append(_all([same_namespace(namespace_of(budget.props), namespace),
                                 selector_matches(selector, labels)]))
        if any(c is not False for c in covered):
            continue
        what = describe(r.type, r.props, r.name)
        out.append((f"{what} runs {replicas:g} replicas (spec.replicas) and no PodDisruptionBudget in its namespace "
                    f"selects its pods (spec.template.metadata.labels {_labels_text(labels)}): add a "
                    "PodDisruptionBudget with minAvailable: 1 (or maxUnavailable: 1) and a selector matching those "
                    "labels, so that a node drain keeps some serving.", r.urn))
    return out


# --- advisory: NetworkPolicies ---------------------------------------------------------------------

def network_policies(resources: list[Resource]) -> list[tuple[str, str]]:
    policies = [r for r in resources if _kind(r) == ("networking.k8s.io", "NetworkPolicy")]
    out = []
    for r in resources:
        if _kind(r) not in WORKLOAD_KINDS:
            continue
        labels = pod_labels(r.type, r.props)
        namespace = namespace_of(r.props)
        covered = []
        for policy in policies:
            selector = get(policy.props, "spec", "podSelector")
            # podSelector is required; left out, it is the empty selector: every pod of the namespace.
            covered.append(_all([same_namespace(namespace_of(policy.props), namespace),
                                 selector_matches({} if selector is None else selector, labels)]))
        if any(c is not False for c in covered):
            continue
        what = describe(r.type, r.props, r.name)
        where = namespace if isinstance(namespace, str) and namespace else "its namespace"
        out.append((f"{what}: no NetworkPolicy in {where} selects its pods (labels {_labels_text(labels)}), so "
                    "they accept traffic from anywhere: add a NetworkPolicy whose spec.podSelector matches them "
                    "(a default-deny policy with podSelector: {} covers every pod of the namespace), then allow "
                    "what they need.", r.urn))
    return out


def _labels_text(labels: Any) -> str:
    if not isinstance(labels, dict) or not labels:
        return "{}"
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(labels.items(), key=lambda kv: str(kv[0]))) + "}"
