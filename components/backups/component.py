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
    claim_name: Optional[str]  # the backup volume; None with CloudNativePG (the operator keeps its own)
    restore_template: Optional[str]
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
        self.claim_name, self.restore_template, self.postgres_image = None, None, subject.postgres_image
        if subject.engine == "cloudnative-pg":
            self._cloudnative_pg(config, subject, child)
            self.register_outputs({"snapshot": f"{subject.app}-{spec.snapshot_label(subject.langflow_version)}"})
            return
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
        self.claim_name = spec.backups_claim_name(subject.app)
        self.restore_template = spec.restore_template_name(subject.app)
        self.register_outputs({"claim_name": self.claim_name, "restore_template": self.restore_template,
                               "snapshot_job": snapshot.metadata.name})

    def _cloudnative_pg(self, config: BackupsConfig, subject: spec.BackupSubject, child: pulumi.ResourceOptions) -> None:
        """The operator backs up: a Backup before each version change, a ScheduledBackup."""
        def custom(name: str, manifest: dict, opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
            return k8s.apiextensions.CustomResource(name, api_version=manifest["apiVersion"], kind=manifest["kind"],
                                                    metadata=manifest["metadata"], spec=manifest["spec"], opts=opts)

        # Kept when replaced or removed: its volume snapshots are the way back to the release before.
        snapshot = custom(f"{subject.app}-snapshot", spec.cnpg_backup_manifest(subject),
                          pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(retain_on_delete=True)))
        if config.schedule is not None:
            custom(f"{subject.app}-scheduled-backup", spec.cnpg_scheduled_backup_manifest(config, subject), child)
        self.ready = [snapshot]
