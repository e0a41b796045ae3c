"""oauth2-proxy's session store: one Redis pod, so that signing out deletes the session itself."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.common import object_metadata
from components.edge import spec
from settings.edge import RedisConfig


class SessionStore(pulumi.ComponentResource):
    """Redis with a generated password (kept in state), reachable at `url`; `secret_name` holds the password
    (`spec.REDIS_PASSWORD_KEY`) for oauth2-proxy. Nothing is persisted: losing the pod only signs people out."""

    url: str
    secret_name: str
    image: str

    def __init__(
        self,
        resource_name: str,
        redis: RedisConfig,
        *,
        app: str,
        namespace: str,
        labels: dict[str, str],
        annotations: dict[str, str],
        registry: Optional[str],
        depends_on: list[pulumi.Resource],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("langflow:platform:SessionStore", resource_name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on)
        name = spec.redis_name(app)
        password = pulumi.Output.secret(
            random.RandomPassword(f"{name}-password", length=32, special=False, opts=child).result)
        secret = k8s.core.v1.Secret(
            name, metadata=object_metadata(namespace, spec.redis_labels(app, labels), annotations, name),
            type="Opaque",
            string_data={spec.REDIS_PASSWORD_KEY: password,
                         spec.REDIS_CONFIG_KEY: pulumi.Output.secret(password.apply(spec.redis_config_file))},
            opts=child)
        deployment = k8s.apps.v1.Deployment(
            name, **spec.redis_deployment_manifest(app, namespace, redis, registry, labels, annotations),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*depends_on, secret]))
        service = k8s.core.v1.Service(name, **spec.redis_service_manifest(app, namespace, labels, annotations),
                                      opts=child)
        self.url = spec.redis_url(app, namespace)
        self.secret_name = name
        self.image = redis.image.reference(registry)
        self.ready = [secret, deployment, service]
        self.register_outputs({"service_name": service.metadata.name, "image": self.image})
