"""The Langflow workload: Deployment, Service, credentials, flows and data volume."""

from __future__ import annotations

from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import langflow_spec as spec
from components.random_values import urlsafe_base64
from settings import StackSettings
from settings.flows import flows_digest


class LangflowApp(pulumi.ComponentResource):
    """Langflow on Kubernetes, shaped by a validated StackSettings.

    Generated credentials come from pulumi-random: created once, kept in state,
    the same on every replica and every later `pulumi up`.
    """

    service_name: pulumi.Output[str]
    base_url: pulumi.Output[str]
    image: pulumi.Output[str]
    superuser_password: Optional[pulumi.Output[str]]
    secret_key: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        settings: StackSettings,
        *,
        namespace: pulumi.Resource,
        database: Optional[spec.DatabaseLink] = None,
        database_ready: Sequence[pulumi.Resource] = (),
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        """`database`: the URL Secret the database component hands over (None: SQLite, or config's own URL
        Secret); `database_ready`: what must exist before Langflow may start on it."""
        super().__init__("langflow:platform:Langflow", resource_name, None, opts)
        config = settings.config
        child = pulumi.ResourceOptions(parent=self, depends_on=[namespace])

        # Generated credentials open the data (the secret key decrypts stored variables): protected as it is.
        keep = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=config.storage.protect))
        self.secret_key = self._secret_key(resource_name, config, keep)
        self.superuser_password = self._superuser_password(resource_name, config, keep)
        credentials = {"LANGFLOW_SECRET_KEY": self.secret_key}
        if self.superuser_password is not None:
            credentials["LANGFLOW_SUPERUSER_PASSWORD"] = self.superuser_password
        # Langflow 1.7+ with the ambassador: the key it adds, generated here, as Langflow reads it from env.
        self.ambassador_api_key: Optional[pulumi.Output[str]] = None
        if spec.ambassador_key_from_env(config):
            generated = random.RandomPassword(f"{resource_name}-ambassador-api-key", length=43, special=False, opts=child)
            self.ambassador_api_key = pulumi.Output.secret(generated.result.apply(lambda value: f"sk-{value}"))
            credentials["LANGFLOW_API_KEY"] = self.ambassador_api_key
        credentials_secret = k8s.core.v1.Secret(
            f"{resource_name}-credentials",
            metadata=spec.metadata(config),
            type="Opaque",
            string_data=credentials,
            opts=child,
        )

        flows_config_map = None
        # Synced flows are the flow sync's (components/flow_sync): the pods mount its ConfigMap by name.
        if config.flows.source == "folder" and not spec.flows_synced(config):
            flows_config_map = k8s.core.v1.ConfigMap(
                f"{resource_name}-flows",
                **spec.flows_config_map_manifest(config, {f.file_name: f.text for f in settings.flows}),
                opts=child,
            )

        workload_deps = [namespace]
        if config.storage.enabled:
            data_claim = k8s.core.v1.PersistentVolumeClaim(
                f"{resource_name}-data",
                **spec.data_claim_manifest(config),
                # Data outlives mistakes: protected against destroy and replacement, and
                # left in the cluster if it ever leaves the program.
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                    protect=config.storage.protect, retain_on_delete=True)),
            )
            workload_deps.append(data_claim)

        template = dict(
            credentials_secret=credentials_secret.metadata.name,
            flows_config_map=flows_config_map.metadata.name if flows_config_map else None,
            flows_digest=flows_digest(settings.flows) if flows_config_map else None,
            database=database,
        )
        workload_deps += list(database_ready)
        if spec.init_job_needed(config):
            # Migrations, superuser, starter projects and flows, once, with the new image: a failure stops
            # `pulumi up` here, before the Deployment changes, so the running release stays as it was.
            init_job = k8s.batch.v1.Job(
                f"{resource_name}-init",
                **spec.init_job_manifest(config, **template),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*workload_deps, credentials_secret]),
            )
            workload_deps.append(init_job)
        deployment = k8s.apps.v1.Deployment(
            resource_name,
            **spec.deployment_manifest(config, **template),
            opts=pulumi.ResourceOptions(parent=self, depends_on=workload_deps),
        )
        service = k8s.core.v1.Service(
            resource_name, **spec.service_manifest(config), opts=child,
        )
        if settings.pod_monitors:
            k8s.apiextensions.CustomResource(f"{resource_name}-pod-monitor", **spec.pod_monitor_manifest(config),
                                             opts=child)
        if spec.pdb_needed(config):
            k8s.policy.v1.PodDisruptionBudget(resource_name, **spec.pdb_manifest(config), opts=child)
        client_config_map = k8s.core.v1.ConfigMap(
            f"{resource_name}-client",
            **spec.client_config_map_manifest(config, settings.default_flow),
            opts=child,
        )

        self.deployment = deployment
        self.credentials_secret_name = credentials_secret.metadata.name
        self.deployment_name = deployment.metadata.name
        self.service_name = service.metadata.name
        self.base_url = service.metadata.name.apply(lambda _: spec.base_url(config))
        self.image = pulumi.Output.from_input(config.image.reference())
        self.client_config_map_name = client_config_map.metadata.name
        self.register_outputs({
            "deployment_name": self.deployment_name,
            "service_name": self.service_name,
            "base_url": self.base_url,
            "image": self.image,
            "client_config_map_name": self.client_config_map_name,
            "secret_key": self.secret_key,
            "superuser_password": self.superuser_password,
        })

    # The generated key and password exist whatever the config says: protected with the data, they must never
    # be deleted, so that setting auth.secret_key (or turning login off) and going back finds them unchanged.
    def _secret_key(self, name: str, config, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
        key = random.RandomBytes(f"{name}-secret-key", length=32, opts=opts)
        if config.auth.secret_key is not None:
            return pulumi.Output.secret(config.auth.secret_key.get_secret_value())
        # 32 random bytes, URL-safe base64: a Fernet key.
        return pulumi.Output.secret(key.base64.apply(urlsafe_base64))

    def _superuser_password(self, name: str, config, opts: pulumi.ResourceOptions) -> Optional[pulumi.Output[str]]:
        password = random.RandomPassword(f"{name}-superuser-password", length=24, special=False, opts=opts)
        if not config.auth.enabled:
            return None  # with login off Langflow ignores it; nothing to export
        if config.auth.superuser_password is not None:
            return pulumi.Output.secret(config.auth.superuser_password.get_secret_value())
        return pulumi.Output.secret(password.result)
