"""Kubernetes' own syntax rules, applied to config values before any resource exists.

Two layers, so that what the program accepts the API server accepts too:

* the schema of the Kubernetes API (from `kubernetes-validate`, pinned to the
  Kubernetes minor version we support) for objects passed through as they
  are (affinity, tolerations, volumes, `valueFrom`, ...): types, field names,
  required fields;
* the rules the schema cannot express, as the API server applies them
  (k8s.io/apimachinery and k8s.io/kubernetes/pkg/apis/core/validation):
  names, label and annotation syntax, quantities, paths, and the semantic
  rules of the pass-through objects.

Every check returns `(sub_path, message)` pairs; the caller puts its config
key in front. Nothing here raises on odd shapes: a value of the wrong type
is itself a problem to report.
"""

from __future__ import annotations

import functools
import posixpath
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterator, Optional

from settings.managed import CONTAINER_NAME
from settings.syntax import with_character

# The Kubernetes minor version whose API schema pass-through objects are checked
# against; kubernetes-validate is pinned to the release that carries it.
KUBERNETES_VERSION = "1.34"

Problem = tuple[str, str]

# --- names --------------------------------------------------------------------

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# The name part of a qualified name (label and annotation keys), and label values.
QUALIFIED_NAME_PART = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
CONFIG_MAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
# Annotations of one object may hold at most this many bytes (keys and values).
ANNOTATIONS_MAX_BYTES = 256 * 1024


def _name_problem(value: Any, what: str, pattern: re.Pattern, limit: int, chars: str) -> Optional[str]:
    if not isinstance(value, str) or not value:
        return f"a {what} is required ({chars}, at most {limit})"
    if len(value) > limit or not pattern.match(value):
        return with_character(f"{value!r} is not a valid {what}: use at most {limit} {chars}, starting and ending with "
                              "a letter or digit", value)
    return None


def dns_label_problem(value: Any, what: str = "name") -> Optional[str]:
    """Names such as namespaces and volumes (RFC 1123 label)."""
    return _name_problem(value, what, DNS_LABEL, 63, "lowercase letters, digits and '-'")


def dns_subdomain_problem(value: Any, what: str = "name") -> Optional[str]:
    """Names of most objects: Secrets, ConfigMaps, claims (RFC 1123 subdomain)."""
    return _name_problem(value, what, DNS_SUBDOMAIN, 253, "lowercase letters, digits, '-' and '.'")


def qualified_name_problem(key: Any, what: str = "key") -> Optional[str]:
    """Label and annotation keys: `[prefix/]name`, prefix a DNS subdomain."""
    if not isinstance(key, str) or not key:
        return f"an empty {what} is not allowed; use e.g. team or example.com/team"
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return f"{key!r}: the prefix before '/' must not be empty; write e.g. example.com/{name}"
    if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
        return with_character(f"{key!r}: the prefix {prefix!r} must be a DNS subdomain (lowercase letters, digits, "
                              "'-', '.'), e.g. example.com", prefix)
    if len(name) > 63 or not QUALIFIED_NAME_PART.match(name):
        return with_character(f"{key!r} is not a valid {what}: the name part needs 1 to 63 letters, digits, '-', '_' "
                              "or '.', starting and ending with a letter or digit", key)
    return None


def label_value_problem(value: Any) -> Optional[str]:
    if not isinstance(value, str):
        return f"{value!r} must be a string (quote it in the stack file)"
    if value and (len(value) > 63 or not QUALIFIED_NAME_PART.match(value)):
        return with_character(f"{value!r} is not a valid label value: at most 63 letters, digits, '-', '_' or '.', "
                              "starting and ending with a letter or digit", value)
    return None


def _map_problems(mapping: Any, what: str, check: Callable[[Any, Any], Optional[str]]) -> list[Problem]:
    if not isinstance(mapping, dict):
        return [("", f"must be a mapping of {what} keys to values")]
    return [(key_path(key), problem) for key, value in mapping.items() if (problem := check(key, value))]


def label_problems(labels: Any) -> list[Problem]:
    """Keys and values of a label map (labels, nodeSelector, matchLabels)."""
    return _map_problems(labels, "label",
                         lambda key, value: qualified_name_problem(key, "label key") or label_value_problem(value))


def _annotation_problem(key: Any, value: Any) -> Optional[str]:
    # The API server checks annotation keys case-insensitively; values are free text.
    problem = qualified_name_problem(key.lower() if isinstance(key, str) else key, "annotation key")
    if problem is None and not isinstance(value, str):
        problem = f"{value!r} must be a string (quote it in the stack file)"
    return problem


def annotation_problems(annotations: Any) -> list[Problem]:
    out = _map_problems(annotations, "annotation", _annotation_problem)
    if isinstance(annotations, dict):
        size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
        if size > ANNOTATIONS_MAX_BYTES:
            out.append(("", f"annotations total {size} bytes, more than Kubernetes allows ({ANNOTATIONS_MAX_BYTES}); "
                            "shorten them"))
    return out


def _plain_key(key: Any) -> bool:
    return isinstance(key, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) is not None


def key_path(key: Any) -> str:
    """How a map key joins a config path, as `pulumi config set --path` spells it: `.name` or `["a.b/c"]`."""
    # Pulumi's property paths quote a key in double quotes, with `\"` its only escape (ParsePropertyPath).
    return f".{key}" if _plain_key(key) else '["' + str(key).replace('"', '\\"') + '"]'


def safe_label_value(text: str) -> Optional[str]:
    """The longest valid label value made from `text` (None when nothing valid is left)."""
    value = re.sub(r"[^-A-Za-z0-9_.]", "_", text)[:63]
    value = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)
    return value or None


# --- quantities -----------------------------------------------------------------

# k8s.io/apimachinery/pkg/api/resource: <sign><number><suffix>, the suffix binary SI,
# decimal SI or a decimal exponent.
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def parse_quantity(value: Any) -> Decimal:
    """The exact value of a Kubernetes quantity (`500m`, `1Gi`, `1e3`, 1, 0.5).

    Raises ValueError for anything the API server would not parse.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{value!r} is not a quantity")
    text = quantity_text(value)
    match = _QUANTITY.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    number, suffix = Decimal(match.group("number")), match.group("suffix") or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number.scaleb(_DECIMAL[suffix])
    return number.scaleb(int(suffix[1:]))


def quantity_text(value: Any) -> str:
    """Unquoted numbers as Kubernetes reads them: `cpu: 1` is "1", `cpu: 0.5` is "0.5"."""
    if isinstance(value, float):
        try:
            return format(Decimal(repr(value)).normalize(), "f")
        except InvalidOperation:
            return repr(value)
    return str(value)


def format_bytes(amount: Decimal) -> str:
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        if amount >= _BINARY[suffix] and amount % _BINARY[suffix] == 0:
            return f"{amount // _BINARY[suffix]}{suffix}"
    return f"{amount} bytes"


# --- paths ------------------------------------------------------------------------

def normal_path(path: str) -> str:
    """A mount path as the container sees it: `/app/./data/` is `/app/data`."""
    normal = posixpath.normpath(path)
    return "/" + normal.lstrip("/") if normal.startswith("/") else normal


def paths_overlap(a: str, b: str) -> bool:
    a, b = normal_path(a).rstrip("/") + "/", normal_path(b).rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


def relative_path_problem(path: Any, what: str = "path") -> Optional[str]:
    """Paths inside a volume (subPath, items[].path): relative, no `..`."""
    if not isinstance(path, str):
        return f"{what} must be a string"
    if path.startswith("/"):
        return f"{path!r}: the {what} must be relative, not absolute"
    if ".." in path.split("/"):
        return f"{path!r}: the {what} must not contain '..'"
    return None


# --- the Kubernetes API schema (kubernetes-validate) -----------------------------------

@functools.lru_cache(maxsize=None)
def _schema_validator(type_file: str):
    import jsonschema
    from kubernetes_validate.utils import schema_contents
    from referencing import Registry, Resource

    folder = f"kubernetes-json-schema/v{KUBERNETES_VERSION}.0-local-strict"
    schema = schema_contents(f"{folder}/{type_file}.json", KUBERNETES_VERSION)
    definitions = schema_contents(f"{folder}/_definitions.json", KUBERNETES_VERSION)
    registry = Resource.from_contents(schema) @ (Resource.from_contents(definitions) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def schema_problems(type_file: str, value: Any) -> list[Problem]:
    """Check `value` against one type of the Kubernetes API (e.g. `affinity-v1`).

    Strict: unknown fields are errors, so a misspelt field never vanishes silently.
    """
    from jsonschema.exceptions import best_match

    out = []
    for error in _schema_validator(type_file).iter_errors(value):
        if error.context:  # oneOf/anyOf: the alternative that came closest
            error = best_match(error.context)
        path = _json_path(error.absolute_path)
        if error.validator == "required":  # point at the missing field itself
            for field in error.validator_value:
                if isinstance(error.instance, dict) and field not in error.instance:
                    out.append((path + key_path(field), f"required (Kubernetes {KUBERNETES_VERSION} API); add it"))
            continue
        out.append((path, _schema_message(error)))
    return sorted(set(out))


def _json_path(parts) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else key_path(p) for p in parts)


def _schema_message(error) -> str:
    where = f"(Kubernetes {KUBERNETES_VERSION} API)"
    if error.validator == "additionalProperties":
        unexpected = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"unknown field{'s' if len(unexpected) > 1 else ''} {', '.join(map(repr, unexpected))} {where}; check the spelling"
    if error.validator == "type":
        wanted = error.validator_value
        wanted = [w for w in (wanted if isinstance(wanted, list) else [wanted]) if w != "null"]
        return f"must be of type {' or '.join(wanted)} {where} (got {error.instance!r})"
    return f"{error.message} {where}"


# --- semantic rules the schema cannot express ---------------------------------------

def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, path + key_path(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")


def _items(value: Any) -> list[tuple[int, Any]]:
    return list(enumerate(value)) if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
NODE_SELECTOR_OPERATORS = SELECTOR_OPERATORS + ("Gt", "Lt")


def _expressions_problems(expressions: Any, operators: tuple[str, ...]) -> list[Problem]:
    """matchExpressions: a label key, an operator, and the values the operator takes."""
    out = []
    for index, requirement in _items(expressions):
        requirement = _dict(requirement)
        at = f".matchExpressions[{index}]"
        problem = qualified_name_problem(requirement.get("key"), "label key")
        if problem:
            out.append((f"{at}.key", problem))
        out += _operator_problems(at, requirement, operators)
    return out


def label_selector_problems(selector: Any) -> list[Problem]:
    """metav1.LabelSelector: matchLabels and matchExpressions."""
    selector = _dict(selector)
    out = [(".matchLabels" + p, m) for p, m in label_problems(selector.get("matchLabels") or {})]
    return out + _expressions_problems(selector.get("matchExpressions"), SELECTOR_OPERATORS)


def _operator_problems(at: str, requirement: dict, operators: tuple[str, ...]) -> list[Problem]:
    operator, values = requirement.get("operator"), requirement.get("values") or []
    if operator not in operators:
        return [(f"{at}.operator", f"{operator!r} is not an operator here; use one of {', '.join(operators)}")]
    if operator in ("In", "NotIn") and not values:
        return [(f"{at}.values", f"operator {operator} needs at least one value")]
    if operator in ("Exists", "DoesNotExist") and values:
        return [(f"{at}.values", f"operator {operator} takes no values; remove them")]
    if operator in ("Gt", "Lt"):
        # One value, a label value that is a whole number: so never negative.
        if len(values) != 1 or not re.fullmatch(r"[0-9]{1,63}", str(values[0])):
            return [(f"{at}.values", f"operator {operator} needs exactly one whole number of 0 or more, e.g. ['3']")]
        return []
    return [(f"{at}.values[{index}]", problem) for index, value in _items(values)
            if (problem := label_value_problem(value))]


def node_selector_term_problems(term: Any) -> list[Problem]:
    term = _dict(term)
    out = []
    if not term.get("matchExpressions") and not term.get("matchFields"):
        out.append(("", "a node selector term needs matchExpressions or matchFields"))
    out += _expressions_problems(term.get("matchExpressions"), NODE_SELECTOR_OPERATORS)
    for index, requirement in _items(term.get("matchFields")):
        requirement = _dict(requirement)
        at = f".matchFields[{index}]"
        if requirement.get("key") != "metadata.name":
            out.append((f"{at}.key", "the only node field to match is metadata.name"))
        if requirement.get("operator") not in ("In", "NotIn"):
            out.append((f"{at}.operator", "use In or NotIn for node fields"))
        elif len(requirement.get("values") or []) != 1:
            out.append((f"{at}.values", "a node field requirement takes exactly one value"))
        elif problem := dns_subdomain_problem(requirement["values"][0], "node name"):
            out.append((f"{at}.values[0]", problem))
    return out


def pod_affinity_term_problems(term: Any) -> list[Problem]:
    term = _dict(term)
    out = []
    topology = term.get("topologyKey")
    problem = qualified_name_problem(topology, "topology key") if topology else \
        "topologyKey is required, e.g. kubernetes.io/hostname or topology.kubernetes.io/zone"
    if problem:
        out.append((".topologyKey", problem))
    for field in ("labelSelector", "namespaceSelector"):
        if term.get(field) is not None:
            out += [(f".{field}{p}", m) for p, m in label_selector_problems(term[field])]
    for index, namespace in _items(term.get("namespaces")):
        problem = dns_label_problem(namespace, "namespace name")
        if problem:
            out.append((f".namespaces[{index}]", problem))
    selector_keys = set(_dict(_dict(term.get("labelSelector")).get("matchLabels")))
    selector_keys |= {_dict(r).get("key") for _, r in _items(_dict(term.get("labelSelector")).get("matchExpressions"))}
    for field in ("matchLabelKeys", "mismatchLabelKeys"):
        for index, key in _items(term.get(field)):
            problem = qualified_name_problem(key, "label key")
            if problem is None and term.get("labelSelector") is None:
                problem = f"{field} needs a labelSelector"
            if problem is None and key in selector_keys:
                problem = f"{key!r} is also in labelSelector; a key may be in only one of them"
            if problem:
                out.append((f".{field}[{index}]", problem))
    return out


def _weighted_problems(base: str, items: Any, field: str, term_problems: Callable[[Any], list[Problem]]) -> list[Problem]:
    """preferredDuringScheduling...: a weight from 1 to 100 and a term each."""
    out = []
    for index, preferred in _items(items):
        at = f"{base}[{index}]"
        preferred = _dict(preferred)
        weight = preferred.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 100:
            out.append((f"{at}.weight", f"weight must be a whole number from 1 to 100 (got {weight!r})"))
        out += [(f"{at}.{field}{p}", m) for p, m in term_problems(preferred.get(field))]
    return out


def affinity_problems(affinity: Any) -> list[Problem]:
    affinity = _dict(affinity)
    out = []
    node = _dict(affinity.get("nodeAffinity"))
    required = node.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is not None:
        base = ".nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        terms = _dict(required).get("nodeSelectorTerms")
        if not terms:
            out.append((f"{base}.nodeSelectorTerms", "at least one node selector term is required"))
        for index, term in _items(terms):
            out += [(f"{base}.nodeSelectorTerms[{index}]{p}", m) for p, m in node_selector_term_problems(term)]
    out += _weighted_problems(".nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution",
                              node.get("preferredDuringSchedulingIgnoredDuringExecution"), "preference",
                              node_selector_term_problems)
    for kind in ("podAffinity", "podAntiAffinity"):
        pod = _dict(affinity.get(kind))
        for index, term in _items(pod.get("requiredDuringSchedulingIgnoredDuringExecution")):
            base = f".{kind}.requiredDuringSchedulingIgnoredDuringExecution[{index}]"
            out += [(base + p, m) for p, m in pod_affinity_term_problems(term)]
        out += _weighted_problems(f".{kind}.preferredDuringSchedulingIgnoredDuringExecution",
                                  pod.get("preferredDuringSchedulingIgnoredDuringExecution"), "podAffinityTerm",
                                  pod_affinity_term_problems)
    return out


def toleration_problems(toleration: Any) -> list[Problem]:
    toleration = _dict(toleration)
    key, operator = toleration.get("key") or "", toleration.get("operator") or "Equal"
    value, effect = toleration.get("value") or "", toleration.get("effect") or ""
    out = []
    if key:
        problem = qualified_name_problem(key, "taint key")
        if problem:
            out.append((".key", problem))
    elif operator != "Exists":
        out.append((".operator", "a toleration without a key must use operator Exists (it then tolerates every taint)"))
    if operator == "Exists" and value:
        out.append((".value", "operator Exists matches any value; remove value or use operator Equal"))
    elif operator == "Equal":
        problem = label_value_problem(value)
        if problem:
            out.append((".value", problem))
    if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
        out.append((".tolerationSeconds", "only used with effect NoExecute; remove it or set effect: NoExecute"))
    return out


_MODE_MAX = 0o777
ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
_DOWNWARD_FIELDS = re.compile(
    r"^(metadata\.(name|namespace|uid|labels|annotations)|metadata\.(labels|annotations)\['[^']+'\])$")
_RESOURCE_FIELDS = {f"{kind}.{resource}" for kind in ("limits", "requests")
                    for resource in ("cpu", "memory", "ephemeral-storage")}
_ENV_FIELDS = re.compile(
    r"^(metadata\.(name|namespace|uid)|metadata\.(labels|annotations)\['[^']+'\]|"
    r"spec\.(nodeName|serviceAccountName)|status\.(hostIP|hostIPs|podIP|podIPs))$")


def _field_api_version(at: str, field_ref: dict[str, Any]) -> list[Problem]:
    if field_ref.get("apiVersion") not in (None, "", "v1"):
        return [(f"{at}.apiVersion", "the only pod API version is v1; remove it or write v1")]
    return []


# Divisors: the ones the API server accepts per resource (validateContainerResourceDivisor).
def _resource_field_problems(at: str, body: dict[str, Any], in_volume: bool) -> list[Problem]:
    """resourceFieldRef: a resource of the container, and a divisor that fits it."""
    out = []
    resource = body.get("resource")
    if resource not in _RESOURCE_FIELDS:
        return [(f"{at}.resource", f"use one of {', '.join(sorted(_RESOURCE_FIELDS))}")]
    container = body.get("containerName")
    if in_volume and not container:
        out.append((f"{at}.containerName", f"required in a volume; write {CONTAINER_NAME}"))
    elif container not in (None, "", CONTAINER_NAME):
        out.append((f"{at}.containerName", f"the only container is {CONTAINER_NAME}"))
    divisor = body.get("divisor")
    if divisor is not None:
        cpu = resource.endswith(".cpu")
        allowed = ("1m", "1") if cpu else ("1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei")
        try:
            valid = parse_quantity(divisor) in {parse_quantity(a) for a in allowed}
        except ValueError:
            valid = False
        if not valid:
            out.append((f"{at}.divisor", f"{divisor!r} is not a divisor for {resource}; use one of {', '.join(allowed)}"))
    return out


def _mode_problem(mode: Any) -> Optional[str]:
    if mode is None:
        return None
    if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= _MODE_MAX:
        return f"must be a file mode from 0 to 0777 (511 in decimal), got {mode!r}"
    return None


def _key_to_path_problems(items: Any, what: str) -> list[Problem]:
    out, seen = [], set()
    for index, item in _items(items):
        item = _dict(item)
        at = f".items[{index}]"
        key = item.get("key")
        if not isinstance(key, str) or not key or len(key) > 253 or not CONFIG_MAP_KEY.match(key):
            out.append((f"{at}.key", f"a {what} key is required (letters, digits, '-', '_', '.')"))
        path = item.get("path")
        problem = relative_path_problem(path) if path else "a path is required (relative to the volume)"
        if problem is None and normal_path(path) in seen:
            problem = f"{path!r} is used twice"
        if problem:
            out.append((f"{at}.path", problem))
        else:
            seen.add(normal_path(path))
        problem = _mode_problem(item.get("mode"))
        if problem:
            out.append((f"{at}.mode", problem))
    return out


def _downward_items_problems(items: Any) -> list[Problem]:
    out, seen = [], set()
    for index, item in _items(items):
        item = _dict(item)
        at = f".items[{index}]"
        path = item.get("path")
        problem = relative_path_problem(path) if path else "a path is required (relative to the volume)"
        if problem is None and normal_path(path) in seen:
            problem = f"{path!r} is used twice"
        if problem:
            out.append((f"{at}.path", problem))
        else:
            seen.add(normal_path(path))
        field, resource = item.get("fieldRef"), item.get("resourceFieldRef")
        if (field is None) == (resource is None):
            out.append((at, "set exactly one of fieldRef or resourceFieldRef"))
        elif field is not None and not _DOWNWARD_FIELDS.match(str(_dict(field).get("fieldPath"))):
            out.append((f"{at}.fieldRef.fieldPath", "use metadata.name, metadata.namespace, metadata.uid, metadata.labels or metadata.annotations"))
        elif field is not None:
            out += _field_api_version(f"{at}.fieldRef", _dict(field))
        elif resource is not None:
            out += _resource_field_problems(f"{at}.resourceFieldRef", _dict(resource), in_volume=True)
        problem = _mode_problem(item.get("mode"))
        if problem:
            out.append((f"{at}.mode", problem))
    return out


def _projection_problems(source: Any) -> list[Problem]:
    source = _dict(source)
    kinds = [k for k in ("secret", "configMap", "downwardAPI", "serviceAccountToken", "clusterTrustBundle", "podCertificate")
             if source.get(k) is not None]
    if len(kinds) != 1:
        return [("", "each projected source needs exactly one of secret, configMap, downwardAPI or serviceAccountToken")]
    (kind,) = kinds
    body = _dict(source[kind])
    if kind in ("secret", "configMap"):
        out = []
        problem = dns_subdomain_problem(body.get("name"), f"{kind} name")
        if problem:
            out.append((f".{kind}.name", problem))
        return out + [(f".{kind}{p}", m) for p, m in _key_to_path_problems(body.get("items"), kind)]
    if kind == "downwardAPI":
        return [(f".downwardAPI{p}", m) for p, m in _downward_items_problems(body.get("items"))]
    if kind == "serviceAccountToken":
        out = []
        problem = relative_path_problem(body.get("path")) if body.get("path") else "a path is required"
        if problem:
            out.append((".serviceAccountToken.path", problem))
        seconds = body.get("expirationSeconds")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int) or not 600 <= seconds <= 2**32):
            out.append((".serviceAccountToken.expirationSeconds", "must be at least 600 (10 minutes)"))
        return out
    return [(f".{kind}", f"{kind} projections are not supported here; use secret, configMap, downwardAPI or serviceAccountToken")]


def _duplicate_projected_paths(sources: Any) -> list[Problem]:
    """All projections share one folder: no two may write the same path."""
    seen: dict[str, int] = {}
    out = []
    for index, source in _items(sources):
        source = _dict(source)
        body = next((_dict(source[k]) for k in source if isinstance(source.get(k), dict)), {})
        paths = [body.get("path")] if "path" in body else [_dict(i).get("path") for _, i in _items(body.get("items"))]
        for path in paths:
            if not isinstance(path, str):
                continue
            normal = normal_path(path)
            if normal in seen and seen[normal] != index:
                out.append((f".sources[{index}]", f"path {path!r} is also written by sources[{seen[normal]}]; use another path"))
            seen.setdefault(normal, index)
    return out


def volume_source_problems(source: str, body: Any) -> list[Problem]:
    """The rules of the volume types Pod Security "restricted" allows."""
    if not isinstance(body, dict):
        return [("", f"the {source} source must be a mapping")]
    out: list[Problem] = []
    if source == "secret":
        problem = dns_subdomain_problem(body.get("secretName"), "Secret name")
        if problem:
            out.append((".secretName", problem))
        out += _key_to_path_problems(body.get("items"), "Secret")
    elif source == "configMap":
        problem = dns_subdomain_problem(body.get("name"), "ConfigMap name")
        if problem:
            out.append((".name", problem))
        out += _key_to_path_problems(body.get("items"), "ConfigMap")
    elif source == "persistentVolumeClaim":
        problem = dns_subdomain_problem(body.get("claimName"), "PersistentVolumeClaim name")
        if problem:
            out.append((".claimName", problem))
    elif source == "emptyDir":
        if body.get("medium") not in (None, "", "Memory"):
            out.append((".medium", "use Memory, or leave it out for the node's disk"))
        if body.get("sizeLimit") is not None:
            try:
                if parse_quantity(body["sizeLimit"]) <= 0:
                    out.append((".sizeLimit", "must be more than 0; write e.g. 1Gi"))
            except ValueError as error:
                out.append((".sizeLimit", f"{error}; write e.g. 1Gi"))
    elif source == "downwardAPI":
        out += _downward_items_problems(body.get("items"))
    elif source == "projected":
        sources = body.get("sources")
        if not isinstance(sources, list) or not sources:
            out.append((".sources", "at least one projected source is required"))
        for index, projection in _items(sources):
            out += [(f".sources[{index}]{p}", m) for p, m in _projection_problems(projection)]
        out += _duplicate_projected_paths(sources)
    elif source == "csi":
        problem = dns_subdomain_problem(body.get("driver"), "CSI driver name")
        if problem:
            out.append((".driver", problem))
    elif source == "ephemeral":
        template = _dict(body.get("volumeClaimTemplate"))
        spec = _dict(template.get("spec"))
        if not spec:
            out.append((".volumeClaimTemplate.spec", "a claim spec is required (accessModes and resources.requests.storage)"))
        else:
            modes = spec.get("accessModes")
            if not modes or not isinstance(modes, list) or not set(modes) <= set(ACCESS_MODES):
                out.append((".volumeClaimTemplate.spec.accessModes", f"at least one access mode is required, of {', '.join(ACCESS_MODES)}"))
            storage = _dict(_dict(spec.get("resources")).get("requests")).get("storage")
            try:
                if storage is None or parse_quantity(storage) <= 0:
                    raise ValueError("a storage request is required")
            except ValueError as error:
                out.append((".volumeClaimTemplate.spec.resources.requests.storage", f"{error}; write e.g. 1Gi"))
    if body.get("defaultMode") is not None:
        problem = _mode_problem(body.get("defaultMode"))
        if problem:
            out.append((".defaultMode", problem))
    return out


def env_source_problems(source: Any) -> list[Problem]:
    """EnvVarSource (`valueFrom`): exactly one reference, each complete."""
    source = _dict(source)
    kinds = [k for k in ("secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef", "fileKeyRef")
             if source.get(k) is not None]
    if len(kinds) != 1:
        return [("", "set exactly one of secretKeyRef, configMapKeyRef, fieldRef or resourceFieldRef")]
    (kind,) = kinds
    body = _dict(source[kind])
    out = []
    if kind in ("secretKeyRef", "configMapKeyRef"):
        what = "Secret" if kind == "secretKeyRef" else "ConfigMap"
        problem = dns_subdomain_problem(body.get("name"), f"{what} name")
        if problem:
            out.append((f".{kind}.name", problem))
        key = body.get("key")
        if not isinstance(key, str) or not key or len(key) > 253 or not CONFIG_MAP_KEY.match(key):
            out.append((f".{kind}.key", f"the key inside the {what} is required (letters, digits, '-', '_', '.')"))
    elif kind == "fieldRef":
        if not _ENV_FIELDS.match(str(body.get("fieldPath"))):
            out.append((".fieldRef.fieldPath", "use a pod field such as metadata.name, metadata.namespace, status.podIP or spec.nodeName"))
        out += _field_api_version(".fieldRef", body)
    elif kind == "resourceFieldRef":
        out += _resource_field_problems(".resourceFieldRef", body, in_volume=False)
    else:
        out.append((".fileKeyRef", f"fileKeyRef needs the EnvFiles feature gate, off in Kubernetes {KUBERNETES_VERSION}; use secretKeyRef"))
    return out
