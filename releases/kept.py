"""What `make destroy` keeps, said plainly from the state it leaves.

`pulumi destroy --exclude-protected` keeps the protected resources (the data's volumes, the database, the
namespace holding them, the generated secrets that open the data) and everything they depend on. The data
depends on the stack's NetworkPolicies (every workload waits for them, __main__.py), so they stay too, on
purpose: a namespace that still holds data stays locked down (default deny) until the data goes.
"""

from __future__ import annotations

from typing import Any

# (label, the resource types it groups), in the order they are said.
GROUPS = (
    ("data", ("kubernetes:core/v1:PersistentVolumeClaim", "kubernetes:apps/v1:StatefulSet",
              "kubernetes:postgresql.cnpg.io/v1:Cluster")),
    ("what opens the data", ("kubernetes:core/v1:Secret", "random:index/randomPassword:RandomPassword",
                             "random:index/randomBytes:RandomBytes")),
    ("the namespace", ("kubernetes:core/v1:Namespace",)),
    ("NetworkPolicies, so the namespace that still holds data stays locked down",
     ("kubernetes:networking.k8s.io/v1:NetworkPolicy",)),
)
PLUMBING = ("pulumi:pulumi:Stack", "pulumi:providers:")


def kept_summary(deployment: dict[str, Any]) -> list[str]:
    """One line per group of what a destroy left in the state (an exported deployment)."""
    names: dict[str, list[str]] = {}
    for resource in deployment.get("resources") or []:
        kind = resource.get("type", "")
        if kind.startswith(PLUMBING) or not resource.get("custom", True) or "urn" not in resource:
            continue
        label = next((label for label, kinds in GROUPS if kind in kinds), "other")
        names.setdefault(label, []).append(resource["urn"].rsplit("::", 1)[-1])
    order = [label for label, _ in GROUPS] + ["other"]
    return [f"kept, {label}: {', '.join(sorted(names[label]))}" for label in order if label in names]
