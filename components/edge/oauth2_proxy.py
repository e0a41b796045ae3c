"""oauth2-proxy in front of Langflow: signs people in with Dex, then passes them on."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.common import object_metadata
from components.edge import spec
from components.random_values import urlsafe_base64
from settings.base import TrustedCA
from settings.edge import IngressConfig, SSOConfig


class OAuth2Proxy(pulumi.ComponentResource):
    """`client_secret` is the one secret Dex's OAuth2Client must carry too; `service` is where the Ingress sends people.
    `per_user`: Langflow is given each person's ID token (sso.identity); `trusted_ca`: the bundle that verifies Dex."""

    client_secret: pulumi.Output[str]
    service: tuple[str, int]
    image: str

    def __init__(
        self,
        resource_name: str,
        sso: SSOConfig,
        ingress: IngressConfig,
        *,
        app: str,
        namespace: str,
        upstream: str,
        labels: dict[str, str],
        annotations: dict[str, str],
        registry: Optional[str],
        depends_on: list[pulumi.Resource],
        per_user: bool = False,
        trusted_ca: Optional[TrustedCA] = None,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("langflow:platform:OAuth2Proxy", resource_name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on)
        name = spec.oauth2_proxy_name(app)
        self.image = sso.oauth2_proxy.image.reference(registry)
        if sso.client_secret is not None:
            self.client_secret = pulumi.Output.secret(sso.client_secret.get_secret_value())
        else:
            generated = random.RandomPassword(f"{name}-client-secret", length=40, special=False, opts=child)
            self.client_secret = pulumi.Output.secret(generated.result)
        # 32 random bytes, URL-safe base64: oauth2-proxy decodes it to an AES-256 key.
        cookie = random.RandomBytes(f"{name}-cookie-secret", length=32, opts=child)
        secret = k8s.core.v1.Secret(
            name, metadata=object_metadata(namespace, spec.labels(app, labels), annotations, name), type="Opaque",
            string_data={spec.CLIENT_SECRET_KEY: self.client_secret,
                         spec.COOKIE_SECRET_KEY: pulumi.Output.secret(cookie.base64.apply(urlsafe_base64))},
            opts=child)
        deployment = k8s.apps.v1.Deployment(
            name, **spec.oauth2_proxy_deployment_manifest(app, namespace, sso, ingress, upstream, registry, labels,
                                                          annotations, per_user=per_user, trusted_ca=trusted_ca),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*depends_on, secret]))
        service = k8s.core.v1.Service(name, **spec.oauth2_proxy_service_manifest(app, namespace, labels, annotations),
                                      opts=child)
        if sso.oauth2_proxy.replicas > 1:
            k8s.policy.v1.PodDisruptionBudget(name, **spec.pdb_manifest(app, namespace, labels, annotations), opts=child)
        self.service = (name, 80)
        self.ready = [deployment, service]
        self.register_outputs({"service_name": service.metadata.name, "client_secret": self.client_secret,
                               "image": self.image})
