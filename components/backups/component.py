"""Database backups: a snapshot before every Langflow version change, scheduled backups, a restore template.

`ready` lists what a release must wait for before Langflow's new version may touch the database
(the snapshot Job); the Langflow component waits for it, beside the database itself.
"""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.backups import spec
from settings.backups import BackupsConfig


class Backups(pulumi.ComponentResource):
    ready: list[pulumi.Resource]
    claim_name: str
    restore_template: str
    postgres_image: Optional[str]  # pg_dump's image, for PostgreSQL

    def __init__(
        self,
        resource_name: str,
        config: BackupsConfig,
        subject: spec.BackupSubject,
        *,
        depends_on: list[pulumi.Resource],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("langflow:platform:Backups", resource_name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on)
        tool = k8s.core.v1.ConfigMap(f"{resource_name}-tool", **spec.tool_config_map_manifest(subject), opts=child)
        claim = k8s.core.v1.PersistentVolumeClaim(
            f"{resource_name}-volume",
            **spec.claim_manifest(config, subject),
            # Backups outlive mistakes, as the data volume does.
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                protect=config.volume.protect, retain_on_delete=True)),
        )
        jobs = pulumi.ResourceOptions(parent=self, depends_on=[*depends_on, claim, tool])
        # Awaited: the release goes on only once the snapshot is complete, and fails if it failed.
        # Named `<app>-snapshot-<suffix>`: a Job's name is a label value (63 characters), whatever the app's name.
        snapshot = k8s.batch.v1.Job(f"{subject.app}-snapshot",
                                    **spec.snapshot_job_manifest(config, subject, tool.metadata.name), opts=jobs)
        if config.schedule is not None:
            k8s.batch.v1.CronJob(f"{resource_name}-scheduled",
                                 **spec.backup_cron_job_manifest(config, subject, tool.metadata.name), opts=jobs)
        k8s.batch.v1.CronJob(f"{resource_name}-restore",
                             **spec.restore_cron_job_manifest(subject, tool.metadata.name), opts=jobs)
        self.ready = [snapshot]
        self.postgres_image = subject.postgres_image
        self.claim_name = spec.backups_claim_name(subject.app)
        self.restore_template = spec.restore_template_name(subject.app)
        self.register_outputs({"claim_name": self.claim_name, "restore_template": self.restore_template,
                               "snapshot_job": snapshot.metadata.name})
