"""The ambassador: HAProxy in front of Langflow for API clients, shared (a Deployment and its Service) and as
a sidecar that client teams add to their pods; and the Langflow API key it adds, which clients never see."""

from __future__ import annotations

from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from components.ambassador import spec
from settings.ambassador import AmbassadorConfig


class Ambassador(pulumi.ComponentResource):
    """`upstream`: the Langflow it fronts; `langflow`: what must serve before the key Job may run (the
    Deployment, rolled out); `api_key`: the generated key Langflow 1.7+ reads from its environment (None:
    Langflow makes the key, and the key Job stores it); `key_scripts`: the key Job's scripts, by file name."""

    base_url: pulumi.Output[str]
    sidecar: pulumi.Output[dict]
    image: str
    ready: list[pulumi.Resource]

    def __init__(
        self,
        resource_name: str,
        config: AmbassadorConfig,
        upstream: spec.Upstream,
        *,
        labels: dict[str, str],
        annotations: dict[str, str],
        registry: Optional[str],
        credentials_secret: pulumi.Input[str],
        langflow: list[pulumi.Resource],
        api_key: Optional[pulumi.Output[str]],
        key_scripts: dict[str, str],
        pod_monitor: bool,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("langflow:platform:Ambassador", resource_name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        objects = spec.Objects(upstream.app, labels, annotations)
        self.image = config.image.reference(registry)
        namespaces = spec.key_secret_namespaces(config, upstream)

        k8s.core.v1.Service(f"{resource_name}-langflow-pods", **spec.langflow_pods_service_manifest(upstream, objects),
                            opts=child)
        # The key, in Langflow's namespace and in each sidecar namespace.
        secrets = [k8s.core.v1.Secret(f"{resource_name}-key-{namespace}",
                                      **spec.key_secret_manifest(namespace, objects, api_key), opts=child)
                   for namespace in namespaces]
        key_ready: list[pulumi.Resource] = list(secrets)
        if api_key is None:
            key_ready.append(self._key_job(resource_name, config, upstream, objects, secrets, credentials_secret,
                                           langflow, key_scripts))

        # Langflow 1.7+: the key is Pulumi's, its digest on the pod templates (not secret: see key_digest).
        key_sha256 = None if api_key is None else pulumi.Output.unsecret(api_key.apply(spec.key_digest))
        shared_text = spec.config_text(config, upstream, sidecar=False)
        config_map = k8s.core.v1.ConfigMap(
            f"{resource_name}-config", **spec.config_map_manifest(upstream.namespace, objects, shared_text), opts=child)
        deployment = k8s.apps.v1.Deployment(
            resource_name, **spec.deployment_manifest(config, upstream, objects, self.image, config_map.metadata.name,
                                                      spec.config_digest(shared_text), key_sha256),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[config_map, *key_ready]))
        service = k8s.core.v1.Service(resource_name, **spec.service_manifest(config, upstream, objects), opts=child)
        if config.replicas > 1:
            k8s.policy.v1.PodDisruptionBudget(resource_name, **spec.pdb_manifest(upstream, objects), opts=child)

        sidecar_text = spec.config_text(config, upstream, sidecar=True)
        for namespace in config.sidecar_namespaces:
            k8s.core.v1.ConfigMap(
                f"{resource_name}-sidecar-config-{namespace}",
                **spec.config_map_manifest(namespace, objects, sidecar_text, spec.name(upstream.app)), opts=child)
        if pod_monitor:
            k8s.apiextensions.CustomResource(
                f"{resource_name}-pod-monitor", **spec.pod_monitor_manifest(upstream, objects), opts=child)

        self.base_url = service.metadata.name.apply(lambda _: spec.base_url(config, upstream))
        self.sidecar = pulumi.Output.from_input(
            spec.sidecar_output(config, upstream, self.image, spec.config_digest(sidecar_text), key_sha256))
        self.ready = [deployment, service]
        self.register_outputs({"base_url": self.base_url, "sidecar": self.sidecar, "image": self.image})

    def _key_job(self, resource_name: str, config: AmbassadorConfig, upstream: spec.Upstream, objects: spec.Objects,
                 secrets: list[k8s.core.v1.Secret], credentials_secret: Any, langflow: list[pulumi.Resource],
                 key_scripts: dict[str, str]) -> k8s.batch.v1.Job:
        """Langflow before 1.7: a Job asks Langflow for a key and stores it, allowed to patch those Secrets only."""
        child = pulumi.ResourceOptions(parent=self)
        account = k8s.core.v1.ServiceAccount(
            f"{resource_name}-key", **spec.key_service_account_manifest(upstream, objects), opts=child)
        grants: list[pulumi.Resource] = [account]
        for namespace in spec.key_secret_namespaces(config, upstream):
            role = k8s.rbac.v1.Role(f"{resource_name}-key-{namespace}", **spec.key_role_manifest(
                namespace, objects, rolls_deployment=namespace == upstream.namespace), opts=child)
            grants.append(k8s.rbac.v1.RoleBinding(
                f"{resource_name}-key-{namespace}", **spec.key_role_binding_manifest(namespace, upstream, objects),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[role, account])))
        scripts = k8s.core.v1.ConfigMap(
            f"{resource_name}-key-scripts", metadata=objects.metadata(upstream.namespace), data=key_scripts, opts=child)
        # A re-created Secret is empty: its new uid names a new Job, which fills it.
        revision = pulumi.Output.all(*[s.metadata.uid for s in secrets]).apply(
            lambda uids: spec.key_job_revision(config, upstream, key_scripts, uids))
        manifest = pulumi.Output.all(scripts.metadata.name, credentials_secret, revision).apply(
            lambda args: spec.key_job_manifest(config, upstream, objects, args[0], args[1], args[2]))
        return k8s.batch.v1.Job(
            f"{resource_name}-key", metadata=manifest["metadata"], spec=manifest["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*langflow, *secrets, *grants, scripts],
                                        delete_before_replace=True))
