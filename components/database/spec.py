"""Decisions for the PostgreSQL component, as plain data.

Every mode ends in one thing Langflow reads: a Secret holding its database URL
(`url_secret_ref`). The URL is built here, percent-encoding the credentials and
carrying the TLS options; values only known at deploy time (passwords) come in
as parameters.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from pathlib import Path
from typing import Any, Optional

from components.common import DATABASE_URL_DIGEST_ANNOTATION, object_metadata, service
from settings.database import MAJOR_ANNOTATION, PostgresConfig, data_claim_name

PORT = 5432
# The official image runs PostgreSQL as this user and group.
POSTGRES_UID = 999
SUPERUSER = "postgres"
URL_KEY = "url"
SUPERUSER_PASSWORD_KEY = "superuser-password"
LANGFLOW_PASSWORD_KEY = "langflow-password"
# Where the server finds its superuser's password (POSTGRES_PASSWORD_FILE).
CREDENTIALS_MOUNT_PATH = "/etc/postgresql-credentials"
# Where Langflow's pods find the server's CA with sslmode verify-ca/verify-full.
CA_MOUNT_PATH = "/etc/langflow/database-ca"
BOOTSTRAP_SQL = (Path(__file__).parent / "bootstrap.sql").read_text()


# --- names and labels ---------------------------------------------------------------

def server_name(app: str) -> str:
    """The StatefulSet, its client Service and the CloudNativePG Cluster."""
    return f"{app}-postgres"


def headless_service_name(app: str) -> str:
    return f"{app}-postgres-headless"


def credentials_secret_name(app: str) -> str:
    return f"{app}-postgres-credentials"


def url_secret_name(app: str) -> str:
    return f"{app}-database-url"


def url_secret_ref(app: str, config: PostgresConfig) -> dict[str, str]:
    """Where Langflow reads its database URL (secretKeyRef)."""
    if config.mode == "cloudnative-pg":
        # The operator's app Secret: a URL with percent-encoded credentials, kept in step by the operator.
        return {"name": f"{server_name(app)}-app", "key": "uri"}
    return {"name": url_secret_name(app), "key": URL_KEY}


def labels(app: str, base: dict[str, str]) -> dict[str, str]:
    return {**base, "app.kubernetes.io/name": "postgresql", "app.kubernetes.io/instance": server_name(app),
            "app.kubernetes.io/component": "database", "app.kubernetes.io/part-of": "langflow",
            "app.kubernetes.io/managed-by": "pulumi"}


def selector_labels(app: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "postgresql", "app.kubernetes.io/instance": server_name(app)}


def bootstrap_selector_labels(app: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "postgresql-bootstrap", "app.kubernetes.io/instance": server_name(app)}


def metadata(app: str, namespace: str, base_labels: dict[str, str], annotations: dict[str, str],
             name: Optional[str] = None, **extra: Any) -> dict[str, Any]:
    return object_metadata(namespace, labels(app, base_labels), annotations, name, **extra)


def deployed_image(config: PostgresConfig, registry: Optional[str]) -> Optional[str]:
    """The PostgreSQL image this mode runs: the server (and its bootstrap Job), the operand, or psql only."""
    if config.mode == "cloudnative-pg":
        return config.cloudnative_pg.image
    return config.image.reference(registry) if config.mode == "in-cluster" or bootstrap_needed(config) else None


# --- the URL --------------------------------------------------------------------------

def database_url(user: str, password: str, host: str, port: int, database: str, sslmode: str,
                 ca_file: Optional[str] = None) -> str:
    """`postgresql://user:password@host:port/db?sslmode=...`, every part percent-encoded."""
    quote = lambda text: urllib.parse.quote(text, safe="")  # noqa: E731
    query = {"sslmode": sslmode, **({"sslrootcert": ca_file} if ca_file else {})}
    host_part = f"[{host}]" if ":" in host else host  # an IPv6 address
    return (f"postgresql://{quote(user)}:{quote(password)}@{host_part}:{port}/{quote(database)}"
            f"?{urllib.parse.urlencode(query)}")


def server_address(app: str, namespace: str, config: PostgresConfig) -> tuple[str, int]:
    if config.mode == "external":
        return config.external.host, config.external.port
    return f"{server_name(app)}.{namespace}.svc", PORT


def sslmode(config: PostgresConfig) -> str:
    # In-cluster traffic stays in the namespace, where NetworkPolicies let only Langflow and its Jobs in.
    return config.external.sslmode if config.mode == "external" else "disable"


def ca_file(config: PostgresConfig) -> Optional[str]:
    ca = config.external.ca_secret if config.mode == "external" else None
    return f"{CA_MOUNT_PATH}/{ca.key}" if ca else None


def url_digest(url: str) -> str:
    """Recorded in pod templates, so that a new password rolls the pods that use it."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


# --- in-cluster: the server ----------------------------------------------------------------

def data_mount(major: int) -> tuple[str, str]:
    """(mount path, PGDATA): up to 17 the image keeps PGDATA in a subfolder; 18 mounts /var/lib/postgresql."""
    if major >= 18:
        return "/var/lib/postgresql", f"/var/lib/postgresql/{major}/docker"
    return "/var/lib/postgresql/data", "/var/lib/postgresql/data/pgdata"


def security_contexts() -> tuple[dict[str, Any], dict[str, Any]]:
    """Pod Security "restricted", as the official image runs: UID and GID 999."""
    pod = {"runAsNonRoot": True, "runAsUser": POSTGRES_UID, "runAsGroup": POSTGRES_UID, "fsGroup": POSTGRES_UID,
           "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}}
    container = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                 "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    return pod, container


def data_claim_manifest(app: str, namespace: str, config: PostgresConfig, base_labels: dict[str, str],
                        annotations: dict[str, str]) -> dict[str, Any]:
    storage = config.in_cluster.storage
    meta = metadata(app, namespace, base_labels, annotations, data_claim_name(app))
    meta["annotations"] = {**meta.get("annotations", {}), MAJOR_ANNOTATION: str(config.image.major)}
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage.size}}}
    if storage.storage_class:
        spec["storageClassName"] = storage.storage_class
    return {"metadata": meta, "spec": spec}


def statefulset_manifest(app: str, namespace: str, config: PostgresConfig, registry: Optional[str],
                         base_labels: dict[str, str], annotations: dict[str, str]) -> dict[str, Any]:
    mount_path, pgdata = data_mount(config.image.major)
    pod_security, container_security = security_contexts()
    ready = ["pg_isready", "--host", "127.0.0.1", "--username", SUPERUSER]
    container = {
        "name": "postgres",
        "image": config.image.reference(registry),
        "ports": [{"name": "postgres", "containerPort": PORT, "protocol": "TCP"}],
        "env": [
            {"name": "POSTGRES_USER", "value": SUPERUSER},
            # The image's entrypoint reads it from the file (initdb only): no password in the server's env.
            {"name": "POSTGRES_PASSWORD_FILE", "value": f"{CREDENTIALS_MOUNT_PATH}/{SUPERUSER_PASSWORD_KEY}"},
            {"name": "PGDATA", "value": pgdata},
        ],
        "resources": config.in_cluster.resources,
        "securityContext": container_security,
        "volumeMounts": [
            {"name": "data", "mountPath": mount_path},
            # The read-only root needs these two writable, as the image's docs say.
            {"name": "run", "mountPath": "/var/run/postgresql"},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "credentials", "mountPath": CREDENTIALS_MOUNT_PATH, "readOnly": True},
        ],
        "startupProbe": {"exec": {"command": ready}, "periodSeconds": 5, "failureThreshold": 60, "timeoutSeconds": 5},
        "readinessProbe": {"exec": {"command": ready}, "periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 5},
        "livenessProbe": {"exec": {"command": ready}, "periodSeconds": 20, "failureThreshold": 6, "timeoutSeconds": 5},
    }
    template_labels = {**labels(app, base_labels), "app.kubernetes.io/version": config.image.tag}
    return {
        "metadata": metadata(app, namespace, base_labels, annotations, server_name(app),
                             image=config.image.reference(registry)),
        "spec": {
            "serviceName": headless_service_name(app),
            "replicas": 1,
            "selector": {"matchLabels": selector_labels(app)},
            # One server on one volume: stop the old pod before the new one starts.
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": template_labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": pod_security,
                    "terminationGracePeriodSeconds": 60,
                    "containers": [container],
                    "volumes": [
                        {"name": "data", "persistentVolumeClaim": {"claimName": data_claim_name(app)}},
                        {"name": "run", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                        # Root's files, readable by the fsGroup (the server's GID) alone.
                        {"name": "credentials", "secret": {
                            "secretName": credentials_secret_name(app), "defaultMode": 0o440,
                            "items": [{"key": SUPERUSER_PASSWORD_KEY, "path": SUPERUSER_PASSWORD_KEY}]}},
                    ],
                },
            },
        },
    }


def service_manifests(app: str, namespace: str, base_labels: dict[str, str],
                      annotations: dict[str, str]) -> list[dict[str, Any]]:
    port = [{"name": "postgres", "port": PORT, "targetPort": "postgres", "protocol": "TCP"}]
    headless = service(metadata(app, namespace, base_labels, annotations, headless_service_name(app)),
                       {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": selector_labels(app),
                        "ports": port})
    client = service(metadata(app, namespace, base_labels, annotations, server_name(app)),
                     {"type": "ClusterIP", "selector": selector_labels(app), "ports": port})
    return [headless, client]


# --- bootstrap: Langflow's role and database -------------------------------------------------

def bootstrap_needed(config: PostgresConfig) -> bool:
    return config.mode == "in-cluster" or (config.mode == "external" and config.external.bootstrap is not None)


def bootstrap_job_manifest(app: str, namespace: str, config: PostgresConfig, registry: Optional[str],
                           base_labels: dict[str, str], annotations: dict[str, str], sql_config_map: Any,
                           langflow_password: dict[str, str], url_hash: Any) -> dict[str, Any]:
    """A Job running psql with the administrator's credentials: creates the role and database if missing.

    `langflow_password` is the secretKeyRef of the role's password. No shell: Kubernetes expands
    $(VAR) in args, and psql quotes each value it interpolates.
    """
    host, port = server_address(app, namespace, config)
    env: list[dict[str, Any]] = [
        {"name": "PGHOST", "value": host},
        {"name": "PGPORT", "value": str(port)},
        {"name": "PGSSLMODE", "value": sslmode(config)},
        {"name": "PGCONNECT_TIMEOUT", "value": "10"},
        {"name": "DB_ROLE", "value": config.user},
        {"name": "DB_NAME", "value": config.database},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": langflow_password}},
    ]
    volumes: list[dict[str, Any]] = [{"name": "sql", "configMap": {"name": sql_config_map}}]
    mounts = [{"name": "sql", "mountPath": "/bootstrap", "readOnly": True}]
    if config.mode == "in-cluster":
        env += [{"name": "PGDATABASE", "value": "postgres"}, {"name": "PGUSER", "value": SUPERUSER},
                {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {
                    "name": credentials_secret_name(app), "key": SUPERUSER_PASSWORD_KEY}}}]
    else:
        bootstrap = config.external.bootstrap
        admin = bootstrap.admin_secret
        env += [{"name": "PGDATABASE", "value": bootstrap.admin_database},
                {"name": "PGUSER", "valueFrom": {"secretKeyRef": {"name": admin.name, "key": admin.user_key}}},
                {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": admin.name, "key": admin.password_key}}}]
        ca = config.external.ca_secret
        if ca is not None:
            env.append({"name": "PGSSLROOTCERT", "value": f"{CA_MOUNT_PATH}/{ca.key}"})
            volumes.append({"name": "database-ca", "secret": {"secretName": ca.name}})
            mounts.append({"name": "database-ca", "mountPath": CA_MOUNT_PATH, "readOnly": True})
    pod_security, container_security = security_contexts()
    return {
        "metadata": metadata(app, namespace, base_labels, annotations, image=config.image.reference(registry)),
        "spec": {
            # The server may still be starting: retry with back-off, within a deadline.
            "backoffLimit": 6,
            "activeDeadlineSeconds": 600,
            "template": {
                # Not the server's selector labels: its Service (and NetworkPolicy) must never take this pod for it.
                "metadata": {"labels": {**labels(app, base_labels), **bootstrap_selector_labels(app),
                                        "app.kubernetes.io/component": "database-bootstrap"},
                             "annotations": {DATABASE_URL_DIGEST_ANNOTATION: url_hash}},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": pod_security,
                    "containers": [{
                        "name": "bootstrap",
                        "image": config.image.reference(registry),
                        "command": ["psql"],
                        "args": ["--no-psqlrc", "-v", "role=$(DB_ROLE)", "-v", "db=$(DB_NAME)",
                                 "-v", "password=$(DB_PASSWORD)", "-f", "/bootstrap/bootstrap.sql"],
                        "env": env,
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
                        "securityContext": container_security,
                        "volumeMounts": mounts,
                    }],
                    "volumes": volumes,
                },
            },
        },
    }


# --- cloudnative-pg ------------------------------------------------------------------------

def cnpg_cluster_manifest(app: str, namespace: str, config: PostgresConfig, base_labels: dict[str, str],
                          annotations: dict[str, str]) -> dict[str, Any]:
    cnpg = config.cloudnative_pg
    storage: dict[str, Any] = {"size": cnpg.storage.size}
    if cnpg.storage.storage_class:
        storage["storageClass"] = cnpg.storage.storage_class
    meta = metadata(app, namespace, base_labels, annotations, server_name(app), image=cnpg.image)
    # Pulumi waits until the operator reports the cluster ready, so Langflow starts on a database that exists.
    meta["annotations"] = {**meta.get("annotations", {}), "pulumi.com/waitFor": "condition=Ready"}
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": meta,
        "spec": {
            "instances": cnpg.instances,
            "imageName": cnpg.image,
            "storage": storage,
            "bootstrap": {"initdb": {"database": config.database, "owner": config.user}},
            # The operator's backups (components/backups) are volume snapshots of this class.
            **({"backup": {"volumeSnapshot": {"className": cnpg.volume_snapshot_class}}}
               if cnpg.volume_snapshot_class else {}),
        },
    }
