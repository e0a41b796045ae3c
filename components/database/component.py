"""The PostgreSQL database Langflow runs on: in-cluster, external (with bootstrap) or CloudNativePG.

Whatever the mode, the component hands Langflow one thing: `url_secret`, the
Secret (`name`, `key`) holding its database URL. `ready` lists what Langflow's
workload must wait for (the server, the bootstrap Job).
"""

from __future__ import annotations

import base64
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.database import spec
from settings.database import PostgresConfig

# Passwords: long, and with the characters a URL must encode, so the encoding is always exercised.
PASSWORD_SPECIALS = "-_.~!*@:/#%?&"


class PostgresDatabase(pulumi.ComponentResource):
    url_secret: pulumi.Output[dict[str, str]]
    url_digest: pulumi.Output[str]
    ca_secret: Optional[dict[str, str]]
    ready: list[pulumi.Resource]
    image: Optional[str]  # the PostgreSQL image it deploys (server, psql Job or operand); None: none

    def __init__(
        self,
        resource_name: str,
        config: PostgresConfig,
        *,
        app: str,
        namespace: str,
        labels: dict[str, str],
        annotations: dict[str, str],
        registry: Optional[str],
        depends_on: list[pulumi.Resource],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("langflow:platform:PostgresDatabase", resource_name, None, opts)
        self.config, self.app, self.namespace = config, app, namespace
        self.labels, self.annotations, self.registry = labels, annotations, registry
        self._child = pulumi.ResourceOptions(parent=self, depends_on=depends_on)
        self.ready = []
        self.ca_secret = None
        self.image = spec.deployed_image(config, registry)

        if config.mode == "cloudnative-pg":
            self._cloudnative_pg()
        else:
            password_ref, password = self._langflow_password()
            if config.mode == "in-cluster":
                self._server(password)
            url = self._url(password)
            if spec.bootstrap_needed(config):
                self._bootstrap(password_ref, url)
            if config.mode == "external" and config.external.ca_secret is not None:
                self.ca_secret = config.external.ca_secret.model_dump()
        self.register_outputs({"url_secret": self.url_secret, "url_digest": self.url_digest, "image": self.image})

    # --- credentials ----------------------------------------------------------------------

    @property
    def _keep(self) -> pulumi.ResourceOptions:
        """Data and what opens it (passwords) outlive destroy and mistakes unless the operator opts out."""
        protect = self.config.in_cluster.storage.protect if self.config.mode == "in-cluster" else False
        return pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(protect=protect, retain_on_delete=protect))

    def _meta(self, name: Optional[str] = None) -> dict[str, Any]:
        return spec.metadata(self.app, self.namespace, self.labels, self.annotations, name)

    def _langflow_password(self) -> tuple[dict[str, str], pulumi.Output[str]]:
        """(secretKeyRef of the Langflow role's password, its value)."""
        config, name = self.config, self.resource_name_prefix
        external = config.external if config.mode == "external" else None
        if external is not None and external.password_secret is not None:
            ref = external.password_secret
            # A Secret this program did not create: read through the provider, never in a shell.
            existing = k8s.core.v1.Secret.get(f"{name}-password-source", f"{self.namespace}/{ref.name}",
                                              opts=pulumi.ResourceOptions(parent=self))
            value = existing.data.apply(lambda data: _decoded(data, ref.name, ref.key))
            return ref.model_dump(), pulumi.Output.secret(value)
        stored: dict[str, Any] = {}
        if external is not None and external.password is not None:
            stored[spec.LANGFLOW_PASSWORD_KEY] = pulumi.Output.secret(external.password.get_secret_value())
        else:
            generated = random.RandomPassword(f"{name}-langflow-password", length=32, special=True,
                                              override_special=PASSWORD_SPECIALS, opts=self._keep)
            stored[spec.LANGFLOW_PASSWORD_KEY] = pulumi.Output.secret(generated.result)
        if config.mode == "in-cluster":
            superuser = random.RandomPassword(f"{name}-superuser-password", length=32, special=False, opts=self._keep)
            stored[spec.SUPERUSER_PASSWORD_KEY] = pulumi.Output.secret(superuser.result)
        credentials = k8s.core.v1.Secret(
            f"{name}-credentials", metadata=self._meta(spec.credentials_secret_name(self.app)), type="Opaque",
            string_data=stored, opts=self._keep)
        self.ready.append(credentials)
        ref = {"name": spec.credentials_secret_name(self.app), "key": spec.LANGFLOW_PASSWORD_KEY}
        return ref, stored[spec.LANGFLOW_PASSWORD_KEY]

    @property
    def resource_name_prefix(self) -> str:
        return f"{self.app}-postgres"

    # --- in-cluster server -----------------------------------------------------------------

    def _server(self, password: pulumi.Output[str]) -> None:
        name, config = self.resource_name_prefix, self.config
        claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-data", **spec.data_claim_manifest(self.app, self.namespace, config, self.labels, self.annotations),
            opts=self._keep)
        services = [k8s.core.v1.Service(f"{name}-{suffix}", **manifest, opts=self._child)
                    for suffix, manifest in zip(("headless", "client"), spec.service_manifests(
                        self.app, self.namespace, self.labels, self.annotations))]
        server = k8s.apps.v1.StatefulSet(
            name, **spec.statefulset_manifest(self.app, self.namespace, config, self.registry, self.labels,
                                              self.annotations),
            opts=pulumi.ResourceOptions.merge(self._keep, pulumi.ResourceOptions(depends_on=[claim, *self.ready])))
        self.ready += [claim, *services, server]

    # --- the URL Secret --------------------------------------------------------------------

    def _url(self, password: pulumi.Output[str]) -> pulumi.Output[str]:
        config = self.config
        host, port = spec.server_address(self.app, self.namespace, config)
        url = password.apply(lambda pw: spec.database_url(
            config.user, pw, host, port, config.database, spec.sslmode(config), spec.ca_file(config)))
        url_secret = k8s.core.v1.Secret(
            f"{self.resource_name_prefix}-url", metadata=self._meta(spec.url_secret_name(self.app)), type="Opaque",
            string_data={spec.URL_KEY: pulumi.Output.secret(url)}, opts=self._child)
        self.ready.append(url_secret)
        self.url_secret = url_secret.metadata.apply(lambda _: spec.url_secret_ref(self.app, config))
        # A digest of the URL, not the URL: kept out of the secrets so previews still show pod template changes.
        self.url_digest = pulumi.Output.unsecret(url.apply(spec.url_digest))
        return url

    def _bootstrap(self, password_ref: dict[str, str], url: pulumi.Output[str]) -> None:
        name = self.resource_name_prefix
        sql = k8s.core.v1.ConfigMap(f"{name}-bootstrap-sql", metadata=self._meta(),
                                    data={"bootstrap.sql": spec.BOOTSTRAP_SQL}, opts=self._child)
        job = k8s.batch.v1.Job(
            f"{name}-bootstrap",
            **spec.bootstrap_job_manifest(self.app, self.namespace, self.config, self.registry, self.labels,
                                          self.annotations, sql.metadata.name, password_ref, self.url_digest),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.ready),
                                        # A new Job for every change; the old one goes once the new one is done.
                                        delete_before_replace=False))
        self.ready.append(job)

    # --- cloudnative-pg --------------------------------------------------------------------

    def _cloudnative_pg(self) -> None:
        config = self.config
        protect = config.cloudnative_pg.storage.protect
        manifest = spec.cnpg_cluster_manifest(self.app, self.namespace, config, self.labels, self.annotations)
        cluster = k8s.apiextensions.CustomResource(
            self.resource_name_prefix, api_version=manifest["apiVersion"], kind=manifest["kind"],
            metadata=manifest["metadata"], spec=manifest["spec"],
            opts=pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(protect=protect, retain_on_delete=protect)))
        self.ready.append(cluster)
        self.url_secret = cluster.metadata.apply(lambda _: spec.url_secret_ref(self.app, config))
        # The operator owns the password; its Secret's content is not known here.
        self.url_digest = pulumi.Output.from_input("operator-managed")


def _decoded(data: Optional[dict[str, str]], name: str, key: str) -> str:
    if not data or key not in data:
        raise ValueError(f"langflow:database.postgresql.external.password_secret: Secret {name!r} has no key {key!r}")
    return base64.b64decode(data[key]).decode()
