"""Dex's OAuth2Client for Langflow, possibly on another cluster (the platform's global one)."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.edge import spec
from settings.edge import IngressConfig, SSOConfig


class DexClient(pulumi.ComponentResource):
    """The client, named as Dex's storage names it, with the secret oauth2-proxy uses and one exact callback per host."""

    def __init__(
        self,
        resource_name: str,
        sso: SSOConfig,
        ingress: IngressConfig,
        *,
        client_secret: pulumi.Input[str],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("langflow:platform:DexClient", resource_name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        dex = sso.dex
        if dex.kubeconfig is not None or dex.context is not None:
            # Dex runs elsewhere: a provider of its own, pointed at that cluster.
            provider = k8s.Provider(
                f"{resource_name}-cluster",
                kubeconfig=dex.kubeconfig.get_secret_value() if dex.kubeconfig else None,
                context=dex.context, opts=child)
            child = pulumi.ResourceOptions(parent=self, provider=provider)
        obj = spec.oauth2_client_object(sso, ingress, client_secret)
        # A ConfigGroup takes the object as written: Dex's fields (`id` among them) sit at the top level.
        self.client = k8s.yaml.v2.ConfigGroup(resource_name, objs=[obj], opts=child)
        self.object_name = spec.dex_object_name(sso.client_id)
        self.register_outputs({"object_name": self.object_name, "namespace": dex.namespace})
