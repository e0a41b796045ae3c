"""The namespace every object of a stack lives in, under Pod Security "restricted"."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.langflow_spec import namespace_manifest


class LangflowNamespace(pulumi.ComponentResource):
    """Creates the stack's namespace, or uses an existing one as it is (`create=False`).

    `protect` keeps it through `pulumi destroy` when it holds data: deleting a
    namespace deletes every volume claim inside it, protected or not. Only a
    namespace this stack creates is labelled and protected; the settings refuse
    to "create" one that exists and belongs to someone else (settings/cluster.py).
    """

    name: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        namespace: str,
        create: bool,
        labels: dict[str, str],
        stack: str,
        protect: bool,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("langflow:platform:Namespace", resource_name, None, opts)
        if create:
            created = k8s.core.v1.Namespace(
                resource_name,
                metadata=namespace_manifest(namespace, labels, stack),
                opts=pulumi.ResourceOptions(parent=self, protect=protect, retain_on_delete=protect),
            )
            self.name = created.metadata.name
        else:
            self.name = pulumi.Output.from_input(namespace)
        self.register_outputs({"name": self.name})
