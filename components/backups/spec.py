"""Decisions for the backups component, as plain data (no Pulumi).

Three workloads share one pod shape per engine:
- the snapshot Job, before every release that changes the Langflow version: its spec names the
  version, so Pulumi replaces (re-runs) it exactly then, and the Langflow init Job and Deployment
  wait for it;
- the backup CronJob, on the configured schedule;
- the restore CronJob, suspended: never scheduled, the template `make restore` and rollbacks
  across a schema change start a Job from (`kubectl create job --from=cronjob/...` does the same).

SQLite is copied by `langflow_backup.py` with the Langflow image's own Python. PostgreSQL runs
`pg_dump`/`pg_restore` of the postgres image between two steps of the same tool, which does the
bookkeeping (names, records, retention, the schema check and the confirmation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from components import langflow_spec
from components.database import spec as database_spec
from components.common import object_metadata
from components.langflow_spec import DatabaseLink
from settings.backups import BackupsConfig, backups_claim_name
from settings.model import LangflowStackConfig

TOOL_FILE = "langflow_backup.py"
TOOL_SOURCE = Path(__file__).with_name(TOOL_FILE)
TOOL_DIR = "/backup-tool"
BACKUP_DIR = "/backups"
WORK_DIR = "/work"
SQLITE_FILE = "/app/data/langflow.db"
RESTORE_CONFIRM_ENV = "CONFIRM"
# Env the releases tool sets on a Job started from the restore template.
RESTORE_ENV = ("RESTORE_FROM", "BACKUP_KIND", "BACKUP_LABEL", RESTORE_CONFIRM_ENV)
DEADLINE_SECONDS = 1800
RESTORE_SCHEDULE = "0 0 1 1 *"  # never used: the CronJob is suspended

# pg_dump with Langflow's own role (it owns every table), to a hidden name renamed when complete.
POSTGRES_DUMP = """\
set -eu
name=$(cat "$WORK_DIR/name")
pg_dump --format=custom --no-owner --no-privileges --dbname="$DATABASE_URL" --file="$BACKUP_DIR/.$name.dump"
mv "$BACKUP_DIR/.$name.dump" "$BACKUP_DIR/$name.dump"
psql --no-psqlrc -At --dbname="$DATABASE_URL" -c 'select version_num from alembic_version' > "$WORK_DIR/revision" \
  2>/dev/null || : > "$WORK_DIR/revision"
"""
# What the database holds now is dumped first (a pre-restore backup); then, in one transaction, every
# object Langflow's role owns is dropped and the backup restored: it all happens, or nothing does.
POSTGRES_RESTORE = POSTGRES_DUMP + """\
# Dollar-quoted with a tag: the kubelet turns two dollar signs in a container's command into one (found on the
# real node), so an untagged dollar quote would reach psql broken.
cat > "$WORK_DIR/drop.sql" <<'SQL'
DO $drop$ DECLARE r record; BEGIN
  FOR r IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = current_schema() AND pg_get_userbyid(c.relowner) = current_user
             AND c.relkind IN ('r', 'v', 'm', 'p') LOOP
    EXECUTE format(CASE WHEN r.relkind = 'v' THEN 'DROP VIEW IF EXISTS %I CASCADE'
                        WHEN r.relkind = 'm' THEN 'DROP MATERIALIZED VIEW IF EXISTS %I CASCADE'
                        ELSE 'DROP TABLE IF EXISTS %I CASCADE' END, r.relname);
  END LOOP;
  FOR r IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = current_schema() AND pg_get_userbyid(c.relowner) = current_user AND c.relkind = 'S' LOOP
    EXECUTE format('DROP SEQUENCE IF EXISTS %I CASCADE', r.relname);
  END LOOP;
  FOR r IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
           WHERE n.nspname = current_schema() AND pg_get_userbyid(t.typowner) = current_user
             AND t.typtype IN ('e', 'd', 'c') AND NOT EXISTS (SELECT FROM pg_class c WHERE c.reltype = t.oid) LOOP
    EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', r.typname);
  END LOOP;
END $drop$;
SQL
# The whole script first (a damaged dump fails here, before anything is dropped), then all of it at once.
pg_restore --no-owner --no-privileges --file="$WORK_DIR/restore.sql" "$(cat "$WORK_DIR/source")"
psql --no-psqlrc --quiet --single-transaction -v ON_ERROR_STOP=1 --dbname="$DATABASE_URL" \
  -f "$WORK_DIR/drop.sql" -f "$WORK_DIR/restore.sql" > /dev/null
echo "restored $(basename "$(cat "$WORK_DIR/source")")"
"""


@dataclass(frozen=True)
class BackupSubject:
    """What the Jobs back up and with which images; values may be Pulumi outputs."""

    app: str
    namespace: str
    engine: str  # sqlite | postgresql
    langflow_image: str
    langflow_version: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    pull_policy: str = "IfNotPresent"
    pull_secrets: tuple[str, ...] = ()
    data_claim: Optional[str] = None  # SQLite: Langflow's data volume
    postgres_image: Optional[str] = None  # PostgreSQL: pg_dump and pg_restore of the server's major version
    database_url_secret: Any = None  # PostgreSQL: {"name", "key"} of LANGFLOW_DATABASE_URL
    database_ca_secret: Optional[dict[str, str]] = None
    database_ca_path: Optional[str] = None
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    # Langflow's selector labels: a SQLite Job prefers the node of the pod that holds the volume.
    langflow_selector: dict[str, str] = field(default_factory=dict)
    cnpg_cluster: Optional[str] = None  # CloudNativePG: the Cluster the operator backs up


def backup_subject(config: LangflowStackConfig, engine: str, database: Optional[DatabaseLink] = None) -> BackupSubject:
    """What the stack's backups cover: its Langflow image and database (the URL Secret the database
    component hands over, for PostgreSQL, whose image brings the pg_dump of the server's version)."""
    return BackupSubject(
        app=config.name, namespace=config.namespace, engine=engine, langflow_image=config.image.reference(),
        langflow_version=config.image.tag, labels=langflow_spec.common_labels(config), annotations=config.annotations,
        pull_policy=config.image.pull_policy, pull_secrets=tuple(config.image.pull_secrets),
        data_claim=langflow_spec.data_claim_name(config) if engine == "sqlite" else None,
        postgres_image=config.database.postgresql.image.reference(config.image.registry)
        if engine == "postgresql" else None,
        database_url_secret=database.url_secret if database else None,
        database_ca_secret=database.ca_secret if database else None,
        database_ca_path=langflow_spec.DATABASE_CA_PATH,
        node_selector=config.node_selector, tolerations=tuple(config.tolerations),
        langflow_selector=langflow_spec.selector_labels(config),
        cnpg_cluster=database_spec.server_name(config.name) if engine == "cloudnative-pg" else None,
    )


def snapshot_label(version: str) -> str:
    """The label of the snapshot taken before the release of Langflow `version`."""
    return f"before-{version}"


def tool_config_map_manifest(subject: BackupSubject) -> dict[str, Any]:
    # No name: Pulumi generates one, so a changed tool gets a new ConfigMap and the Jobs follow it.
    return {"metadata": _metadata(subject), "data": {TOOL_FILE: TOOL_SOURCE.read_text()}}


def claim_manifest(config: BackupsConfig, subject: BackupSubject) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": config.volume.size}}}
    if config.volume.storage_class:
        spec["storageClassName"] = config.volume.storage_class
    return {"metadata": _metadata(subject, backups_claim_name(subject.app)), "spec": spec}


def pod_selector_labels(app: str) -> dict[str, str]:
    """Every backup and restore pod. Never Langflow's selector labels: its Service must not route to these
    pods, nor a rollout count them."""
    return {"app.kubernetes.io/name": "langflow-backups", "app.kubernetes.io/instance": app}


def _labels(subject: BackupSubject, component: str) -> dict[str, str]:
    return {**subject.labels, **pod_selector_labels(subject.app), "app.kubernetes.io/component": component}


def _metadata(subject: BackupSubject, name: Optional[str] = None, **extra: Any) -> dict[str, Any]:
    return object_metadata(subject.namespace, _labels(subject, "backups"), subject.annotations, name, **extra)


def _tool(*args: str) -> list[str]:
    return ["python", f"{TOOL_DIR}/{TOOL_FILE}", *args]


def _container(subject: BackupSubject, name: str, image: str, command: list[str], env: list[dict[str, Any]],
               mounts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name, "image": image, "imagePullPolicy": subject.pull_policy, "command": command, "env": env,
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": langflow_spec.container_security_context(), "volumeMounts": mounts,
    }


def backup_pod(subject: BackupSubject, tool_config_map: Any, action: str, kind: str, label: str,
               keep: int) -> dict[str, Any]:
    """The pod of a snapshot or backup (`action` backup) or of a restore (`action` restore)."""
    env = [{"name": "BACKUP_DIR", "value": BACKUP_DIR}, {"name": "WORK_DIR", "value": WORK_DIR}, {"name": "LANGFLOW_VERSION", "value": subject.langflow_version},
           {"name": "BACKUP_ENGINE", "value": subject.engine}, {"name": "BACKUP_KEEP", "value": str(keep)}]
    restore = action == "restore"
    if restore:
        # Empty in the template: the Job started from it sets them, CONFIRM only after the operator confirmed.
        env += [{"name": name, "value": ""} for name in RESTORE_ENV]
    else:
        env += [{"name": "BACKUP_KIND", "value": kind}, {"name": "BACKUP_LABEL", "value": label}]
    mounts = [{"name": "backups", "mountPath": BACKUP_DIR}, {"name": "tool", "mountPath": TOOL_DIR, "readOnly": True},
              {"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [
        {"name": "backups", "persistentVolumeClaim": {"claimName": backups_claim_name(subject.app)}},
        {"name": "tool", "configMap": {"name": tool_config_map}},
        {"name": "tmp", "emptyDir": {}},
    ]
    init: list[dict[str, Any]] = []
    if subject.engine == "sqlite":
        mounts.append({"name": "data", "mountPath": str(Path(SQLITE_FILE).parent)})
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": subject.data_claim}})
        args = ["restore", "--database", SQLITE_FILE] if restore else ["snapshot", "--database", SQLITE_FILE]
        containers = [_container(subject, action, subject.langflow_image, _tool(*args), env, mounts)]
    else:
        mounts.append({"name": "work", "mountPath": WORK_DIR})
        volumes.append({"name": "work", "emptyDir": {}})
        database_env = [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": subject.database_url_secret}}]
        database_mounts = list(mounts)
        if subject.database_ca_secret:
            volumes.append({"name": "database-ca", "secret": {"secretName": subject.database_ca_secret["name"]}})
            database_mounts.append({"name": "database-ca", "mountPath": subject.database_ca_path, "readOnly": True})
        if restore:
            plan, finish = _tool("plan-restore"), _tool("finish", "--kind", "pre-restore", "--label", "before-restore")
        else:
            plan, finish = _tool("plan-dump"), _tool("finish")
        init = [
            _container(subject, "plan", subject.langflow_image, plan, env, mounts),
            _container(subject, action, subject.postgres_image, ["/bin/sh", "-c", POSTGRES_RESTORE if restore
                                                                 else POSTGRES_DUMP],
                       env + database_env, database_mounts),
        ]
        containers = [_container(subject, "record", subject.langflow_image, finish, env, mounts)]
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        # Langflow's own: the volumes' fsGroup, UID 1000, Pod Security "restricted".
        "securityContext": langflow_spec.pod_security_context(),
        **({"initContainers": init} if init else {}),
        "containers": containers,
        "volumes": volumes,
    }
    optional = {
        "imagePullSecrets": [{"name": n} for n in subject.pull_secrets],
        "nodeSelector": subject.node_selector,
        "tolerations": list(subject.tolerations),
    }
    spec.update({k: v for k, v in optional.items() if v})
    if subject.engine == "sqlite" and subject.langflow_selector:
        # A ReadWriteOnce volume attaches to one node: prefer the node of the Langflow pod that holds it.
        spec["affinity"] = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                               "labelSelector": {"matchLabels": subject.langflow_selector}}}]}}
    return {"metadata": {"labels": _labels(subject, f"backups-{action}")}, "spec": spec}


def _job_spec(pod: dict[str, Any]) -> dict[str, Any]:
    # One try: a failed copy is reported, not retried over the same files; the deadline ends a hung one.
    return {"backoffLimit": 0, "activeDeadlineSeconds": DEADLINE_SECONDS, "template": pod}


def snapshot_job_manifest(config: BackupsConfig, subject: BackupSubject, tool_config_map: Any) -> dict[str, Any]:
    """The Job before a release: it names the version, so it re-runs exactly when the version changes."""
    pod = backup_pod(subject, tool_config_map, "backup", "snapshot", snapshot_label(subject.langflow_version),
                     config.snapshots_kept)
    return {"metadata": _metadata(subject, image=subject.langflow_image), "spec": _job_spec(pod)}


def backup_cron_job_manifest(config: BackupsConfig, subject: BackupSubject, tool_config_map: Any) -> dict[str, Any]:
    pod = backup_pod(subject, tool_config_map, "backup", "scheduled", "scheduled", config.scheduled_kept)
    return {
        "metadata": _metadata(subject, f"{subject.app}-backup", image=subject.langflow_image),
        "spec": {"schedule": config.schedule, "timeZone": "Etc/UTC", "concurrencyPolicy": "Forbid",
                 "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
                 "jobTemplate": {"spec": _job_spec(pod)}},
    }


def restore_template_name(app: str) -> str:
    return f"{app}-restore"


def restore_cron_job_manifest(subject: BackupSubject, tool_config_map: Any) -> dict[str, Any]:
    pod = backup_pod(subject, tool_config_map, "restore", "", "", 3)
    return {
        "metadata": _metadata(subject, restore_template_name(subject.app), image=subject.langflow_image),
        "spec": {"schedule": RESTORE_SCHEDULE, "suspend": True, "concurrencyPolicy": "Forbid",
                 "jobTemplate": {"spec": _job_spec(pod)}},
    }


# --- CloudNativePG: the operator's own objects ------------------------------------------------------

CNPG_API = "postgresql.cnpg.io/v1"


def cnpg_backup_manifest(subject: BackupSubject) -> dict[str, Any]:
    """The operator's Backup before a release: named for the version, so a new version makes a new one.

    Awaited until the operator reports it completed; retained (its snapshots are the rollback's way back).
    """
    meta = _metadata(subject, f"{subject.app}-{snapshot_label(subject.langflow_version)}")
    meta["annotations"] = {**meta.get("annotations", {}), "pulumi.com/waitFor": "jsonpath={.status.phase}=completed",
                           "pulumi.com/timeoutSeconds": str(DEADLINE_SECONDS)}
    return {"apiVersion": CNPG_API, "kind": "Backup", "metadata": meta,
            "spec": {"cluster": {"name": subject.cnpg_cluster}, "method": "volumeSnapshot"}}


def cnpg_schedule(schedule: str) -> str:
    """The operator's cron has a seconds field first; the macros it reads as they are."""
    return schedule if schedule.startswith("@") else f"0 {schedule}"


def cnpg_scheduled_backup_manifest(config: BackupsConfig, subject: BackupSubject) -> dict[str, Any]:
    return {"apiVersion": CNPG_API, "kind": "ScheduledBackup",
            "metadata": _metadata(subject, f"{subject.app}-backup"),
            "spec": {"schedule": cnpg_schedule(config.schedule), "cluster": {"name": subject.cnpg_cluster},
                     "method": "volumeSnapshot", "backupOwnerReference": "self"}}
