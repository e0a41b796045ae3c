"""The policy pack: `pulumi preview --policy-pack policy` (and `make up`, through the Automation API).

The Pulumi CLI runs this file through the Python language host (`python <this folder> <engine address>`), in
the virtualenv PulumiPolicy.yaml names: the project's own `.venv`, so one hash-locked environment
(requirements.txt) serves the program and the pack. This file only wires the rules (rules.py: plain functions,
tested without an engine) into PolicyPack; the server starts only when it runs as the main program.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationPolicy,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE, UNKNOWN_ARRAY_VALUE, UNKNOWN_ASSET_VALUE, UNKNOWN_BOOLEAN_VALUE, UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE, UNKNOWN_STRING_VALUE, _DictProxy, _ListProxy,
)

if __package__:  # imported as `policy.__main__` (the tests)
    from . import rules
else:  # run by the language host: the folder itself is on sys.path
    import rules  # type: ignore[no-redef]

PACK_NAME = "langflow-policy"
PACK_DESCRIPTION = ("What every Langflow stack must be (pinned images, resources, Pod Security \"restricted\", TLS, "
                    "no literal credentials, authentication in production) and should be (disruption budgets, "
                    "network policies).")

_UNKNOWNS = {UNKNOWN_BOOLEAN_VALUE, UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, UNKNOWN_ARRAY_VALUE,
             UNKNOWN_ASSET_VALUE, UNKNOWN_ARCHIVE_VALUE, UNKNOWN_OBJECT_VALUE}


def plain(value: Any) -> Any:
    """The SDK's props as plain dicts and lists, with rules.UNKNOWN for values not known yet.

    The SDK wraps props in proxies that raise on the first unknown value read, which would stop a whole
    rule (and, for a stack rule, the check of every resource) during a preview. Unwrapped, each rule
    decides per value and never reports one it cannot know.
    """
    if isinstance(value, (_DictProxy, _ListProxy)):
        value = value["__target"]
    if isinstance(value, Mapping):
        return {key: plain(value[key]) for key in value}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, str) and value in _UNKNOWNS:
        return rules.UNKNOWN
    return value


def resource_policy(name: str, description: str, rule: Callable[..., list[str]],
                    level: EnforcementLevel) -> ResourceValidationPolicy:
    def validate(args, report_violation) -> None:
        for message in rule(args.resource_type, plain(args.props), args.name):
            report_violation(message, None)

    return ResourceValidationPolicy(name=name, description=description, validate=validate, enforcement_level=level)


def stack_policy(name: str, description: str, rule: Callable[[list[rules.Resource], Mapping[str, Any]], list],
                 level: EnforcementLevel, config_schema: PolicyConfigSchema | None = None) -> StackValidationPolicy:
    def validate(args, report_violation) -> None:
        resources = [rules.Resource(r.resource_type, plain(r.props), r.urn, r.name) for r in args.resources]
        for message, urn in rule(resources, args.get_config() or {}):
            report_violation(message, urn or None)

    return StackValidationPolicy(name=name, description=description, validate=validate, enforcement_level=level,
                                 config_schema=config_schema)


def _production_stacks(config: Mapping[str, Any]) -> list[str]:
    stacks = config.get("production_stacks")
    return list(stacks) if isinstance(stacks, (list, tuple)) else list(rules.DEFAULT_PRODUCTION_STACKS)


MANDATORY, ADVISORY = EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY

POLICIES = [
    resource_policy(
        "pinned-images",
        "Every container, init container and ephemeral container image (Pods, Deployments, StatefulSets, "
        "DaemonSets, ReplicaSets, Jobs, CronJobs' job templates) and every CloudNativePG Cluster's spec.imageName "
        "carries a tag that does not move (not latest, main, master, stable, edge, nightly or dev, and not none "
        "at all, which means latest) or a digest: a release runs what was reviewed, and a rollback gets it back.",
        rules.pinned_images, MANDATORY),
    resource_policy(
        "container-resources",
        "Every container and init container requests CPU and memory (the scheduler places pods by their "
        "requests) and has a memory limit (a leak ends in its own restart, not in the node running out of "
        "memory). No CPU limit is required: a CPU limit throttles a container even while the node has idle CPU "
        "(CFS quota), which slows start-ups and flow runs for nothing; the stacks set none and rely on requests.",
        rules.container_resources, MANDATORY),
    resource_policy(
        "pod-security-restricted",
        "Pods meet Pod Security \"restricted\", checked at preview, before anything is applied: runAsNonRoot (pod "
        "or every container) and no UID 0, allowPrivilegeEscalation: false, capabilities drop ALL (only "
        "NET_BIND_SERVICE may be added), seccompProfile RuntimeDefault or Localhost (pod or every container), "
        "nothing privileged, no hostNetwork, hostPID, hostIPC or hostPort, and only the volume types restricted "
        "allows (configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected, secret: no "
        "hostPath).",
        rules.pod_security, MANDATORY),
    resource_policy(
        "ingress-tls",
        "Every Ingress has spec.tls, and every rule's host is in spec.tls[].hosts (a *.domain entry covers one "
        "label): no plain-HTTP way to Langflow's sign-in, API keys and flows.",
        rules.ingress_tls, MANDATORY),
    resource_policy(
        "no-literal-credentials",
        "No credential is written into a pod spec as text (pod specs are readable by whoever can read the "
        "workload, and land in Pulumi's state and diffs): no env entry whose name ends like a credential "
        "(...PASSWORD, ...SECRET, ...TOKEN, ...API_KEY, ...PRIVATE_KEY, ...CREDENTIALS) with a literal value "
        "instead of valueFrom, no env value or argument that is a URL with user:password@, and no argument like "
        "--client-secret=, --cookie-secret= or --password= with a literal ($(VAR), an env var read from a Secret, "
        "is fine).",
        rules.literal_credentials, MANDATORY),
    stack_policy(
        "langflow-authentication",
        "In production stacks (policy config production_stacks, default [\"prod\"]) nothing serves Langflow "
        "without authentication: a Deployment labelled app.kubernetes.io/name: langflow has its login on "
        "(container env LANGFLOW_AUTO_LOGIN \"false\"), or else oauth2-proxy (a Deployment labelled "
        "app.kubernetes.io/name: oauth2-proxy) has --upstream= pointing at Langflow's Service, no Ingress routes "
        "to that Service directly, and the Service is of type ClusterIP.",
        lambda resources, config: rules.authenticated_langflow(resources, _production_stacks(config)),
        MANDATORY,
        PolicyConfigSchema(properties={"production_stacks": {
            "type": "array", "items": {"type": "string"}, "default": list(rules.DEFAULT_PRODUCTION_STACKS),
            "description": "The stacks that are production (stack names, as in the resources' URNs).",
        }})),
    stack_policy(
        "pod-disruption-budgets",
        "Every Deployment or StatefulSet with more than one replica has a PodDisruptionBudget in its namespace "
        "whose selector matches its pod template's labels, so that node drains keep some replicas serving.",
        lambda resources, config: rules.disruption_budgets(resources), ADVISORY),
    stack_policy(
        "network-policies",
        "Every workload's pods are selected by some NetworkPolicy in their namespace (its podSelector matches the "
        "pod template's labels; an empty podSelector matches every pod), so that what may reach them is decided, "
        "not left open.",
        lambda resources, config: rules.network_policies(resources), ADVISORY),
]


if __name__ == "__main__":
    from pulumi_policy import PolicyPack

    PolicyPack(name=PACK_NAME, description=PACK_DESCRIPTION, policies=POLICIES)
