"""The flow sync step (flows.update: sync): a flow change goes live through Langflow's API, with no pod roll."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.flow_sync import spec
from settings.flows import FlowFile, flows_digest
from settings.model import LangflowStackConfig


class FlowSync(pulumi.ComponentResource):
    """Applies `flows` to the running Langflow, then records them as what its pods load at start-up.

    `langflow`: what must serve before the sync may run (the Deployment, rolled out); `credentials_secret`:
    the Secret with the superuser's password. A failed sync fails `pulumi up` here: the flows ConfigMap is
    written only after the Job succeeded, so a pod that restarts later loads the flows that are live.
    """

    flows_revision: pulumi.Output[dict]

    def __init__(
        self,
        resource_name: str,
        config: LangflowStackConfig,
        flows: list[FlowFile],
        script: str,
        *,
        credentials_secret: pulumi.Input[str],
        langflow: list[pulumi.Resource],
        commit: Optional[str] = None,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("langflow:platform:FlowSync", resource_name, None, opts)
        files = k8s.core.v1.ConfigMap(f"{resource_name}-files", **spec.sync_config_map_manifest(config, flows, script),
                                      opts=pulumi.ResourceOptions(parent=self))
        # Named after the revision, and awaited: `pulumi up` goes on only once Langflow serves these flows.
        # Delete-before-replace: a new image with the same flows replaces the Job under the same name.
        job = k8s.batch.v1.Job(
            f"{resource_name}-job",
            **spec.job_manifest(config, flows, script, files.metadata.name, credentials_secret),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*langflow, files], delete_before_replace=True))
        k8s.core.v1.ConfigMap(
            f"{resource_name}-live",
            **spec.flows_config_map_manifest(config, flows, commit),
            # Its name is fixed (the pods mount it): a changed ConfigMap is replaced in place of the old one.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[job], delete_before_replace=True))
        self.flows_revision = pulumi.Output.from_input({"sha256": flows_digest(flows), "commit": commit,
                                                        "job": job.metadata.name})
        self.register_outputs({"flows_revision": self.flows_revision})
