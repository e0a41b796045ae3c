"""The stack's NetworkPolicies: a default deny for every pod of the stack, then what each workload needs."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.network_policies import spec
from settings.network import NetworkPoliciesConfig


class NetworkPolicies(pulumi.ComponentResource):
    names: list[str]

    def __init__(
        self,
        resource_name: str,
        config: NetworkPoliciesConfig,
        pods: spec.StackPods,
        *,
        app: str,
        namespace: str,
        labels: dict[str, str],
        annotations: dict[str, str],
        depends_on: list[pulumi.Resource],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        """`pods`: the workloads to cover, by the selector labels of the components that run them."""
        super().__init__("langflow:platform:NetworkPolicies", resource_name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on)
        manifests = spec.network_policy_manifests(config, pods, app=app, namespace=namespace, labels=labels,
                                                  annotations=annotations)
        for name, manifest in manifests.items():
            k8s.networking.v1.NetworkPolicy(name, **manifest, opts=child)
        self.names = list(manifests)
        self.register_outputs({"names": self.names})
