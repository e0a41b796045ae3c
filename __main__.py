"""Langflow on Kubernetes: read config, compose components, export outputs."""

from pathlib import Path

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env

from components import langflow_spec as spec
from components.ambassador.component import Ambassador
from components.backups.component import Backups
from components.backups.spec import backup_subject
from components.database.component import PostgresDatabase
from components.edge.dex_client import DexClient
from components.edge.ingress import LangflowIngress
from components.edge.oauth2_proxy import OAuth2Proxy
from components.edge.session_store import SessionStore
from components.flow_sync.component import FlowSync
from components.langflow import LangflowApp
from components.namespace import LangflowNamespace
from components.network_policies.component import NetworkPolicies
from components.network_policies.spec import stack_pods
from flowsync import SCRIPT as FLOW_SYNC_SCRIPT, api_key_scripts
from settings import ConfigError, load_settings, project_values
from settings.backups import backup_engine
from settings.cluster import KubeconfigCluster
from settings.flows import flows_commit

all_config = {**get_config_env(), **CONFIG.get()}
stack = f"{pulumi.get_project()}/{pulumi.get_stack()}"
try:
    settings = load_settings(
        project_values(all_config),
        Path(__file__).parent,
        # The cluster the provider deploys to, read-only: is the namespace ours to create?
        cluster=KubeconfigCluster(all_config.get("kubernetes:kubeconfig"), all_config.get("kubernetes:context")),
        stack=stack,
    )
except ConfigError as error:
    # RunError: the message alone, no traceback, and nothing registered.
    raise pulumi.RunError(str(error)) from None
for warning in settings.warnings:
    pulumi.log.warn(warning)
config = settings.config

namespace = LangflowNamespace(
    config.namespace,
    namespace=config.namespace,
    create=config.create_namespace,
    labels=spec.common_labels(config),
    stack=stack,
    # Deleting it would delete the volumes inside: the data volume, and the backups.
    protect=(config.storage.enabled and config.storage.protect)
    or (backup_engine(config.backups, config.database) is not None and config.backups.volume.protect),
)
# Every workload waits for its NetworkPolicies: no pod of the stack ever runs outside them. The protected data
# depends on them too, so `make destroy` keeps them with it: a namespace that still holds data stays locked down.
guarded = [namespace]
if config.network_policies.enabled:
    guarded.append(NetworkPolicies(
        f"{config.name}-network-policies", config.network_policies, stack_pods(config), app=config.name,
        namespace=config.namespace, labels=spec.common_labels(config), annotations=config.annotations,
        depends_on=[namespace]))
database = None
if config.database.type == "postgresql":
    database = PostgresDatabase(
        f"{config.name}-database",
        config.database.postgresql,
        app=config.name,
        namespace=config.namespace,
        labels=config.labels,
        annotations=config.annotations,
        registry=config.image.registry,
        depends_on=guarded,
    )
database_link = spec.DatabaseLink(database.url_secret, database.url_digest, database.ca_secret) if database else None
database_ready = list(database.ready) if database else []
backups = None
backup_engine_name = backup_engine(config.backups, config.database)
if backup_engine_name is not None:
    backups = Backups(
        f"{config.name}-backups",
        config.backups,
        backup_subject(config, backup_engine_name, database_link),
        depends_on=[*guarded, *database_ready],
    )
langflow = LangflowApp(
    config.name,
    settings,
    namespace=namespace,
    database=database_link,
    # Under its NetworkPolicies, and a new Langflow version migrates the database only after the snapshot of it.
    database_ready=guarded[1:] + database_ready + (backups.ready if backups else []),
)
if spec.flows_synced(config):
    flow_sync = FlowSync(f"{config.name}-flow-sync", config, settings.flows, FLOW_SYNC_SCRIPT.read_text(),
                         credentials_secret=langflow.credentials_secret_name, langflow=[langflow.deployment],
                         commit=flows_commit(Path(__file__).parent, config.flows.folder),
                         opts=pulumi.ResourceOptions(depends_on=guarded))
    pulumi.export("flows_revision", flow_sync.flows_revision)
images = {"langflow": langflow.image}
client_base_url = langflow.base_url
if config.ambassador.enabled:
    # API clients call the ambassador, which adds the key: Langflow itself answers only it (and the edge).
    ambassador = Ambassador(
        f"{config.name}-ambassador", config.ambassador, spec.ambassador_upstream(config),
        labels=config.labels, annotations=config.annotations, registry=config.image.registry,
        credentials_secret=langflow.credentials_secret_name, langflow=[langflow.deployment],
        api_key=langflow.ambassador_api_key, key_scripts=api_key_scripts(), pod_monitor=settings.pod_monitors,
        opts=pulumi.ResourceOptions(depends_on=guarded))
    images["ambassador"] = ambassador.image
    client_base_url = ambassador.base_url
    pulumi.export("ambassador_sidecar", ambassador.sidecar)
if database is not None and database.image:
    images["postgres"] = database.image
if backups is not None and backups.postgres_image:
    images.setdefault("postgres", backups.postgres_image)

edge_deps = [namespace, langflow]
front = (config.name, config.service.port)
if config.sso.enabled:
    session_store = None
    if config.sso.oauth2_proxy.session_store == "redis":
        session_store = SessionStore(
            f"{config.name}-oauth2-proxy-redis", config.sso.oauth2_proxy.redis, app=config.name,
            namespace=config.namespace, labels=config.labels, annotations=config.annotations,
            registry=config.image.registry, depends_on=guarded)
        images["oauth2_proxy_redis"] = session_store.image
    oauth2_proxy = OAuth2Proxy(
        f"{config.name}-oauth2-proxy", config.sso, config.ingress,
        app=config.name, namespace=config.namespace, upstream=f"{spec.base_url(config)}/",
        labels=config.labels, annotations=config.annotations, registry=config.image.registry,
        # oauth2-proxy is ready only once it reaches its session store.
        depends_on=guarded + (session_store.ready if session_store else []),
        per_user=spec.sso_per_user(config),
        trusted_ca=config.trusted_ca if config.trusted_ca.enabled else None)
    DexClient(f"{config.name}-dex-client", config.sso, config.ingress, client_secret=oauth2_proxy.client_secret)
    front, edge_deps = oauth2_proxy.service, edge_deps + oauth2_proxy.ready
    images["oauth2_proxy"] = oauth2_proxy.image
if config.ingress.enabled:
    ingress = LangflowIngress(
        config.name, config.ingress, app=config.name, namespace=config.namespace,
        upload_limit_mb=config.runtime.max_file_size_upload_mb, front=front, sso=config.sso.enabled,
        labels=config.labels, annotations=config.annotations, depends_on=edge_deps)
    pulumi.export("urls", ingress.urls)

pulumi.export("namespace", namespace.name)
pulumi.export("service_name", langflow.service_name)
pulumi.export("base_url", langflow.base_url)
pulumi.export("image", langflow.image)
# Every image the stack runs, as pinned: what a release deployed, beside the record in its history.
pulumi.export("images", images)
pulumi.export("client", {
    # What a caller of POST {base_url}/api/v1/run/{flow} needs, and where it lives; through the ambassador,
    # no key at all (it adds one).
    "base_url": client_base_url,
    "run_url": client_base_url.apply(lambda url: f"{url}/api/v1/run/{{flow_id}}"),
    "default_flow_id": settings.default_flow,
    "config_map": langflow.client_config_map_name,
    "api_key_secret": None if config.ambassador.enabled else {
        "name": spec.api_key_secret_name(config), "key": spec.API_KEY_SECRET_KEY},
})
pulumi.export("backups", {
    # What `make restore` and a rollback across a schema change use; null: this stack takes no backups.
    "engine": backup_engine_name,
    "namespace": config.namespace,
    "deployment": config.name,
    "volume": backups.claim_name if backups else None,
    "restore_template": backups.restore_template if backups else None,
    "schedule": config.backups.schedule if backups else None,
})
pulumi.export("secret_key", langflow.secret_key)
if langflow.superuser_password is not None:
    pulumi.export("superuser", {"name": config.auth.superuser, "password": langflow.superuser_password})
