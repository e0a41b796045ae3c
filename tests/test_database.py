"""The PostgreSQL component: its URL, its rules, and what each mode registers (under Pulumi mocks)."""

from __future__ import annotations

import urllib.parse

import pytest

from components.database import spec
from settings.loader import parse_config
from tests.program import FakeCluster, run_program, stack_values
from tests.test_config import assert_refused, problems

HARD_PASSWORD = "p@ss:w/rd#%?& 'q\"uo te'"
SECRET = "kubernetes:core/v1:Secret"
JOB = "kubernetes:batch/v1:Job"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
SIG_KEY, SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"


def postgres(mode: str = "in-cluster", **extra) -> dict:
    return {"database": {"type": "postgresql", "postgresql": {"mode": mode, **extra}}}


EXTERNAL = {"host": "db.example.com", "password_secret": {"name": "pg", "key": "password"}}
SHARED = {"replicas": 2, "storage": {"access_mode": "ReadWriteMany"}}


def plain(wire):
    return wire["value"] if isinstance(wire, dict) and wire.get(SIG_KEY) == SECRET_SIG else wire


# --- the URL -----------------------------------------------------------------------------

@pytest.mark.parametrize("password", [HARD_PASSWORD, "simple", "ünïcødé-€", "%41%", "a@b@c", "::::"])
def test_the_url_round_trips_any_password(password):
    url = spec.database_url("lang flow", password, "db.example.com", 6432, "lang/db", "verify-full", "/etc/ca.crt")
    parts = urllib.parse.urlsplit(url)
    assert parts.scheme == "postgresql" and parts.hostname == "db.example.com" and parts.port == 6432
    assert urllib.parse.unquote(parts.username) == "lang flow"
    assert urllib.parse.unquote(parts.password) == password
    assert urllib.parse.unquote(parts.path[1:]) == "lang/db"
    assert urllib.parse.parse_qs(parts.query) == {"sslmode": ["verify-full"], "sslrootcert": ["/etc/ca.crt"]}
    assert password == "simple" or password not in url  # never raw in the URL


def test_an_ipv6_host_is_bracketed():
    assert "@[fd00::5]:5432/" in spec.database_url("u", "p", "fd00::5", 5432, "d", "require")


@pytest.mark.parametrize(("major", "mount", "pgdata"), [
    (16, "/var/lib/postgresql/data", "/var/lib/postgresql/data/pgdata"),
    (17, "/var/lib/postgresql/data", "/var/lib/postgresql/data/pgdata"),
    (18, "/var/lib/postgresql", "/var/lib/postgresql/18/docker"),
])
def test_pgdata_follows_the_major_version(major, mount, pgdata):
    assert spec.data_mount(major) == (mount, pgdata)


# --- validation ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("values", "key", "fragment"),
    [
        (postgres("mysql"), "database.postgresql.mode", "'in-cluster', 'external' or 'cloudnative-pg'"),
        ({"database": {"type": "postgresql"}}, "database.postgresql", "required when database.type is 'postgresql'"),
        ({"database": {"postgresql": {"mode": "in-cluster"}}}, "database.postgresql", "only used when database.type"),
        (postgres("external"), "database.postgresql.external", "required with mode external"),
        (postgres(external=EXTERNAL), "database.postgresql.external", "only used with mode external"),
        (postgres("external", cloudnative_pg={"instances": 2}, external=EXTERNAL), "database.postgresql.cloudnative_pg",
         "only used with mode cloudnative-pg"),
        (postgres("external", external={**EXTERNAL, "port": 70000}), "database.postgresql.external.port", "at most 65535"),
        (postgres("external", external={**EXTERNAL, "port": 0}), "database.postgresql.external.port", "at least 1"),
        (postgres("external", external={**EXTERNAL, "host": "https://db"}), "database.postgresql.external.host", "no scheme"),
        (postgres("external", external={**EXTERNAL, "host": "db:5432"}), "database.postgresql.external.host", "no port"),
        (postgres("external", external={"host": "db"}), "database.postgresql.external.password_secret", "required"),
        (postgres("external", external={**EXTERNAL, "password": "x"}), "database.postgresql.external.password",
         "not both"),
        (postgres("external", external={**EXTERNAL, "sslmode": "verify-full"}), "database.postgresql.external.ca_secret",
         "required with sslmode verify-full"),
        (postgres("external", external={**EXTERNAL, "sslmode": "strict"}), "database.postgresql.external.sslmode",
         "'verify-full'"),
        (postgres("external", external={**EXTERNAL, "ca_secret": {"name": "ca", "key": "ca.crt"}}),
         "database.postgresql.external.ca_secret", "not used with sslmode prefer"),
        (postgres("external", external={**EXTERNAL, "bootstrap": {"admin_secret": {"name": "Admin!"}}}),
         "database.postgresql.external.bootstrap.admin_secret.name", "not a valid Secret name"),
        (postgres("external", external={**EXTERNAL, "bootstrap": {"admin_secret": {"name": "a"}, "admin_database": "Pg"}}),
         "database.postgresql.external.bootstrap.admin_database", "not a database name"),
        (postgres(database="Langflow"), "database.postgresql.database", "not a database name PostgreSQL accepts"),
        (postgres(database="1flows"), "database.postgresql.database", "not starting with a digit"),
        (postgres(database="l" * 64), "database.postgresql.database", "at most 63"),
        (postgres(database="postgres"), "database.postgresql.database", "needs a database of its own"),
        (postgres(database="template1"), "database.postgresql.database", "needs a database of its own"),
        (postgres(user="postgres"), "database.postgresql.user", "needs a role of its own"),
        (postgres(user="pg_monitor"), "database.postgresql.user", "reserved"),
        (postgres(user="lang-flow"), "database.postgresql.user", "not a role name"),
        (postgres(image={"tag": "11.22"}), "database.postgresql.image.tag", "PostgreSQL 12 or later"),
        (postgres(image={"tag": "17"}), "database.postgresql.image.tag", "moving tag"),
        (postgres(image={"tag": "latest"}), "database.postgresql.image.tag", "moving tag"),
        (postgres(image={"digest": "sha256:1"}), "database.postgresql.image.digest", "64 lowercase hex"),
        (postgres(in_cluster={"storage": {"size": "big"}}), "database.postgresql.in_cluster.storage.size", "quantity"),
        (postgres(in_cluster={"resources": {"request": {}}}), "database.postgresql.in_cluster.resources.request",
         "use requests and limits"),
        (postgres(in_cluster={"storage": {"size": "500Mi"}}), "database.postgresql.in_cluster.storage.size",
         "at least 1Gi"),
        (postgres(in_cluster={"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}}),
         "database.postgresql.in_cluster.resources.requests.memory", "the request 2Gi is more than"),
        (postgres(in_cluster={"resources": {"limits": {"memory": "64Mi"}}}),
         "database.postgresql.in_cluster.resources.limits.memory", "at least 256Mi"),
        (postgres(in_cluster={"resources": {"requests": {"memory": "512m"}}}),
         "database.postgresql.in_cluster.resources.requests.memory", "'m' means milli"),
        (postgres("cloudnative-pg", cloudnative_pg={"storage": {"size": "0"}}),
         "database.postgresql.cloudnative_pg.storage.size", "at least 1Gi"),
        (postgres("cloudnative-pg", cloudnative_pg={"instances": 0}), "database.postgresql.cloudnative_pg.instances",
         "at least 1"),
        (postgres("cloudnative-pg", cloudnative_pg={"image": "ghcr.io/cloudnative-pg/postgresql:latest"}),
         "database.postgresql.cloudnative_pg.image", "moving tag"),
    ],
)
def test_database_rules_name_the_key(values, key, fragment):
    assert_refused({**values, **SHARED}, key, fragment)


@pytest.mark.parametrize("values", [
    postgres(), postgres(image={"tag": "18.1"}, database="flows_db", user="flows_app"),
    postgres("external", external={**EXTERNAL, "sslmode": "verify-full", "ca_secret": {"name": "ca", "key": "ca.crt"}}),
    postgres("external", external={"host": "10.0.0.7", "port": 6432, "bootstrap": {"admin_secret": {"name": "admin"}}}),
    postgres("external", external={"host": "db", "password": "secret-value"}),
    postgres("cloudnative-pg", cloudnative_pg={"instances": 3, "storage": {"size": "20Gi"}}),
])
def test_valid_database_settings_pass(values):
    assert parse_config({**values, **SHARED}).database.type == "postgresql"


@pytest.mark.parametrize(("values", "key", "fragment"), [
    ({"replicas": 2, **postgres()}, "storage.access_mode", "cannot share a ReadWriteOnce volume"),
    ({"replicas": 2, **postgres(), "storage": {"enabled": False}}, "storage.enabled", "each pod would keep its own"),
])
def test_several_replicas_share_the_data_folder(values, key, fragment):
    assert_refused(values, key, fragment)


# --- what each mode registers ---------------------------------------------------------------

def prod_with(database: dict, cluster: FakeCluster | None = None):
    values = {**stack_values("prod"), **database, **SHARED}
    run = run_program(values, "prod", cluster=cluster)
    assert run.error is None, run.error
    return run


def langflow_env(run) -> dict:
    (container,) = run.named(DEPLOYMENT, "langflow").inputs["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def url_of(run) -> str:
    secret = run.named(SECRET, "langflow-postgres-url")
    return plain(secret.inputs["stringData"])["url"]


def test_in_cluster_mode():
    run = prod_with(postgres())
    server = run.one(STATEFULSET).inputs
    pod = server["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 999 and pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"] == "postgres:17.6"
    assert {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"} in container["env"]
    # The superuser's password as a file the image's entrypoint reads, never in the server's env.
    password_file = "/etc/postgresql-credentials/superuser-password"
    assert {"name": "POSTGRES_PASSWORD_FILE", "value": password_file} in container["env"]
    assert not any("secretKeyRef" in e.get("valueFrom", {}) for e in container["env"])
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["credentials"]["secret"] == {"secretName": "langflow-postgres-credentials", "defaultMode": 0o440,
                                                "items": [{"key": "superuser-password", "path": "superuser-password"}]}
    assert {"name": "credentials", "mountPath": "/etc/postgresql-credentials", "readOnly": True} in container["volumeMounts"]
    assert container["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    claim = run.named(PVC, "langflow-postgres-data").inputs
    assert claim["metadata"]["annotations"]["langflow.org/postgres-major"] == "17"
    # Langflow's own role and database, separate from the superuser; the URL reaches the client Service.
    url = url_of(run)
    assert url.startswith("postgresql://langflow:") and "@langflow-postgres.langflow.svc:5432/langflow?sslmode=disable" in url
    assert langflow_env(run)["LANGFLOW_DATABASE_URL"] == {"secretKeyRef": {"name": "langflow-database-url", "key": "url"}}
    bootstrap = run.named(JOB, "langflow-postgres-bootstrap").inputs["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in bootstrap["env"]}
    assert env["PGUSER"] == "postgres" and env["DB_ROLE"] == "langflow" and env["DB_NAME"] == "langflow"
    assert env["DB_PASSWORD"] == {"secretKeyRef": {"name": "langflow-postgres-credentials", "key": "langflow-password"}}
    assert bootstrap["command"] == ["psql"] and "password=$(DB_PASSWORD)" in bootstrap["args"]


def test_in_cluster_data_and_passwords_are_protected_and_retained():
    run = prod_with(postgres())
    for key in [(PVC, "langflow-postgres-data"), (STATEFULSET, "langflow-postgres"), (SECRET, "langflow-postgres-credentials"),
                ("random:index/randomPassword:RandomPassword", "langflow-postgres-superuser-password"),
                ("random:index/randomPassword:RandomPassword", "langflow-postgres-langflow-password")]:
        assert run.options[key].protect is True and run.options[key].retain_on_delete is True, key
    unprotected = prod_with(postgres(in_cluster={"storage": {"protect": False}}))
    assert unprotected.options[(PVC, "langflow-postgres-data")].protect is False


def test_the_init_job_runs_langflow_once_before_the_deployment():
    run = prod_with(postgres())
    job = run.named(JOB, "langflow-init").inputs
    pod = job["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["command"][:2] == ["/bin/sh", "-c"] and "langflow run" in container["command"][2]
    assert "startupProbe" not in container and pod["spec"]["restartPolicy"] == "Never"
    assert container["image"] == "langflowai/langflow:1.6.4"
    # Same env as the Deployment, its own data folder, and never behind the Service.
    assert {e["name"] for e in container["env"]} == set(langflow_env(run))
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "langflow-init"
    assert job["spec"]["activeDeadlineSeconds"] == 300
    deployment_deps = run.options[(DEPLOYMENT, "langflow")].depends_on
    assert any(getattr(d, "_name", None) == "langflow-init" for d in deployment_deps)


def test_several_replicas_roll_one_at_a_time_and_deliver_events_directly():
    run = prod_with(postgres())
    deployment = run.named(DEPLOYMENT, "langflow").inputs
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert langflow_env(run)["LANGFLOW_EVENT_DELIVERY"] == "direct"
    assert run.named(PVC, "langflow-data").inputs["spec"]["accessModes"] == ["ReadWriteMany"]


def test_external_mode_reads_the_password_from_its_secret_through_the_provider():
    cluster = FakeCluster({"langflow": {"labels": {}, "annotations": {"langflow.org/stack": "langflow/prod"}}},
                          secrets={"pg": {"password": HARD_PASSWORD}})
    run = prod_with(postgres("external", external={**EXTERNAL, "sslmode": "require"}), cluster)
    assert run.reads == ["langflow/pg"]
    url = url_of(run)
    parts = urllib.parse.urlsplit(url)
    assert urllib.parse.unquote(parts.password) == HARD_PASSWORD and HARD_PASSWORD not in url
    assert parts.hostname == "db.example.com" and parts.query == "sslmode=require"
    assert not run.of_type(STATEFULSET) and not [j for j in run.of_type(JOB) if "bootstrap" in j.name]


def test_external_mode_with_bootstrap_and_a_ca():
    cluster = FakeCluster({"langflow": {"labels": {}, "annotations": {"langflow.org/stack": "langflow/prod"}}},
                          secrets={"admin": {"username": "root", "password": "x"}, "ca": {"ca.crt": "PEM"}})
    external = {"host": "db.example.com", "sslmode": "verify-full", "ca_secret": {"name": "ca", "key": "ca.crt"},
                "bootstrap": {"admin_secret": {"name": "admin"}}}
    run = prod_with(postgres("external", external=external), cluster)
    url = url_of(run)
    assert "sslmode=verify-full" in url and "sslrootcert=%2Fetc%2Flangflow%2Fdatabase-ca%2Fca.crt" in url
    job = run.named(JOB, "langflow-postgres-bootstrap").inputs["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in job["containers"][0]["env"]}
    assert env["PGUSER"] == {"secretKeyRef": {"name": "admin", "key": "username"}}
    assert env["PGSSLROOTCERT"] == "/etc/langflow/database-ca/ca.crt"
    # The role's password was generated: the bootstrap Job sets it, Langflow's URL carries it.
    assert env["DB_PASSWORD"] == {"secretKeyRef": {"name": "langflow-postgres-credentials", "key": "langflow-password"}}
    pod = run.named(DEPLOYMENT, "langflow").inputs["spec"]["template"]["spec"]
    assert {"name": "database-ca", "secret": {"secretName": "ca"}} in pod["volumes"]
    assert {"name": "database-ca", "mountPath": "/etc/langflow/database-ca", "readOnly": True} in pod["containers"][0]["volumeMounts"]


def test_cloudnative_pg_mode_uses_the_operator_s_app_secret():
    run = prod_with(postgres("cloudnative-pg", cloudnative_pg={"instances": 3}))
    cluster = run.one("kubernetes:postgresql.cnpg.io/v1:Cluster").inputs
    assert cluster["spec"]["instances"] == 3 and cluster["spec"]["bootstrap"]["initdb"] == {"database": "langflow", "owner": "langflow"}
    assert cluster["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"
    assert langflow_env(run)["LANGFLOW_DATABASE_URL"] == {"secretKeyRef": {"name": "langflow-postgres-app", "key": "uri"}}
    assert run.options[("kubernetes:postgresql.cnpg.io/v1:Cluster", "langflow-postgres")].protect is True


def test_a_missing_secret_or_key_is_named_before_anything_is_registered():
    cluster = FakeCluster({"langflow": {"labels": {}, "annotations": {"langflow.org/stack": "langflow/prod"}}},
                          secrets={"pg": {"pass": "x"}})
    values = {**stack_values("prod"), **postgres("external", external=EXTERNAL), **SHARED}
    run = run_program(values, "prod", cluster=cluster)
    assert "langflow:database.postgresql.external.password_secret: Secret 'pg' has no key 'password'" in str(run.error)
    run = run_program(values, "prod", cluster=FakeCluster(cluster.namespaces))
    assert "Secret 'pg' does not exist in namespace 'langflow'" in str(run.error)
    assert run.resources == []


def test_a_new_postgres_major_is_refused_while_the_volume_holds_the_old_one():
    cluster = FakeCluster({"langflow": {"labels": {}, "annotations": {"langflow.org/stack": "langflow/prod"}}},
                          claims={"langflow-postgres-data": {"langflow.org/postgres-major": "16"}})
    values = {**stack_values("prod"), **postgres(image={"tag": "17.6"}), **SHARED}
    run = run_program(values, "prod", cluster=cluster)
    assert "langflow:database.postgresql.image.tag: PostgreSQL 17 cannot open the database volume" in str(run.error)
    assert "Upgrading PostgreSQL to a new major version" in str(run.error)
    # A new minor of the same major rolls out.
    values["database"]["postgresql"]["image"] = {"tag": "16.10"}
    assert run_program(values, "prod", cluster=cluster).error is None


def test_the_registry_override_applies_to_the_database_image():
    run = prod_with({**postgres(), "image": {"tag": "1.6.4", "registry": "registry.internal:5000"}})
    (container,) = run.one(STATEFULSET).inputs["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.internal:5000/postgres:17.6"
