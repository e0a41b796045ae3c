"""The Ingress: TLS for every host, every path routed to oauth2-proxy with single sign-on, else to Langflow."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.edge import spec
from settings.edge import IngressConfig


class LangflowIngress(pulumi.ComponentResource):
    def __init__(
        self,
        resource_name: str,
        ingress: IngressConfig,
        *,
        app: str,
        namespace: str,
        upload_limit_mb: int,
        front: tuple[str, int],
        sso: bool,
        labels: dict[str, str],
        annotations: dict[str, str],
        depends_on: list[pulumi.Resource],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        """`front`: the Service every path goes to (oauth2-proxy with `sso`, which lets the API paths past the
        sign-in; Langflow without)."""
        super().__init__("langflow:platform:Ingress", resource_name, None, opts)
        created = k8s.networking.v1.Ingress(
            resource_name,
            **spec.ingress_manifest(app, namespace, ingress, upload_limit_mb=upload_limit_mb, front=front, sso=sso,
                                    base_labels=labels, annotations=annotations),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on))
        self.hosts = [h.host for h in ingress.hosts]
        self.urls = [f"{'http' if ingress.tls.mode == 'none' else 'https'}://{h}" for h in self.hosts]
        self.register_outputs({"name": created.metadata.name, "urls": self.urls})
