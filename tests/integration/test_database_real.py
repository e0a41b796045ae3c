"""External PostgreSQL with bootstrap, for real: a PostgreSQL server on 127.0.0.1 stands in for the platform's.

The real engine deploys the stack on the local cluster; the bootstrap Job it registered is read back from the
API server and its command run against the real server (the simulated pods run nothing); then a real Langflow
starts on the URL from the program's Secret. The password holds every character a URL must encode.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from settings.loader import parse_config
from settings.model import LANGFLOW_DEFAULT_TAG, VERIFIED_LANGFLOW_VERSIONS
from settings.stack_file import stack_values
from tests.integration.pulumi_project import Project
from verify.checks import Report
from verify.drill import UpgradeDrill
from verify.postgres import ScratchPostgres, expand

pytestmark = [pytest.mark.integration, pytest.mark.langflow]
ROOT = Path(__file__).resolve().parents[2]
NEWEST = VERIFIED_LANGFLOW_VERSIONS[-1]
HARD_PASSWORD = "p@ss:w/rd#%?& 'q\"uo te'"


def secret_data(client, namespace: str, name: str) -> dict[str, str]:
    data = client.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def run_job_for_real(client, namespace: str, job: dict) -> subprocess.CompletedProcess:
    """A Job's container, run here as the kubelet would: env resolved from the API server, $(VAR) expanded."""
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {"PATH": os.environ["PATH"]}
    for item in container["env"]:
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        env[item["name"]] = secret_data(client, namespace, ref["name"])[ref["key"]] if ref else item["value"]
    folder = Path(tempfile.mkdtemp())
    for volume in pod["volumes"]:
        if "configMap" in volume:
            data = client.get(f"/api/v1/namespaces/{namespace}/configmaps/{volume['configMap']['name']}")["data"]
            for key, text in data.items():
                (folder / key).write_text(text)
    argv = [container["command"][0], *expand(container["args"], env)]
    argv = [re.sub(r"^/bootstrap/", f"{folder}/", a) for a in argv]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


def test_external_postgres_with_bootstrap_end_to_end(toolchain_bin, local_cluster, tmp_path):
    cluster = local_cluster()
    client = cluster.client()
    base = parse_config({**stack_values(ROOT, "prod")}).database.postgresql
    with ScratchPostgres(base, log=print, bootstrap=False) as server:
        # The platform's side: a namespace, an administrator's Secret and the password Langflow's role gets.
        client.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "langflow"}})
        for name, data in (("pg-admin", {"username": "postgres", "password": server.superuser_password}),
                           ("pg-langflow", {"password": HARD_PASSWORD})):
            client.create("/api/v1/namespaces/langflow/secrets", {
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}})
        project = Project(tmp_path, "prod", toolchain_bin, cluster.kubeconfig)
        database = {"type": "postgresql", "postgresql": {"mode": "external", "external": {
            "host": "127.0.0.1", "port": server.port, "sslmode": "disable",
            "password_secret": {"name": "pg-langflow", "key": "password"},
            "bootstrap": {"admin_secret": {"name": "pg-admin"}}}}}
        document = yaml.safe_load(project.stack_file().read_text())
        # Backups of an external server are the operator's choice: on here, with Langflow's own role.
        document["config"].update({"langflow:database": database, "langflow:create_namespace": False,
                                   "langflow:backups": {"enabled": True}})
        project.stack_file().write_text(yaml.safe_dump(document))
        project.up()

        (bootstrap,) = [j for j in client.items("/apis/batch/v1/namespaces/langflow/jobs")
                        if j["metadata"]["name"].startswith("langflow-postgres-bootstrap")]
        for attempt in (1, 2):  # idempotent: a second release runs it again
            done = run_job_for_real(client, "langflow", bootstrap)
            assert done.returncode == 0, f"run {attempt}: {done.stderr}"

        url = secret_data(client, "langflow", "langflow-database-url")["url"]
        assert url.startswith("postgresql://langflow:") and f"@127.0.0.1:{server.port}/langflow?sslmode=disable" in url
        assert HARD_PASSWORD not in url
        check = subprocess.run(["psql", url, "-tAc", "select current_user"], capture_output=True, text=True)
        assert check.stdout.strip() == "langflow", check.stderr  # libpq reads the program's URL as it is

        # The snapshot Job ran before Langflow's start-up; backups are scheduled; restores have their template.
        done = {j["metadata"]["name"].rsplit("-", 1)[0] for j in client.items("/apis/batch/v1/namespaces/langflow/jobs")}
        assert {"langflow-snapshot", "langflow-init"} <= done, done
        cron_jobs = {c["metadata"]["name"] for c in client.items("/apis/batch/v1/namespaces/langflow/cronjobs")}
        assert cron_jobs == {"langflow-backup", "langflow-restore"}
        assert project.outputs()["backups"]["engine"] == "postgresql"

        # Real Langflows on that server, through that URL: 1.6.4 with data, the snapshot Job's pod, the newest
        # release's init Job migrating, a refused and a confirmed restore, 1.6.4 on its data again, then a
        # scheduled backup restored onto an emptied database (verify/drill.py).
        values = stack_values(project.root, "prod")
        lines: list[str] = []
        ok = UpgradeDrill(values, project.root, "prod", LANGFLOW_DEFAULT_TAG, NEWEST, report=Report(out=lines.append),
                          database_url=url).run()
        output = "\n".join(lines)
        assert ok, output
        for check in ("the init Job runs Langflow's start-up once and exits", "a restore without confirmation is refused",
                      f"Langflow {NEWEST} migrated the schema", f"Langflow {LANGFLOW_DEFAULT_TAG} serves the pre-upgrade "
                      "data: the user"):
            assert f"  ok    {check}" in output, output

        # Nothing of the platform's database is the program's to delete.
        project.run("destroy", "--yes", "--exclude-protected")
        assert client.get_or_none("/api/v1/namespaces/langflow/secrets/pg-langflow") is not None
        assert subprocess.run(["psql", url, "-tAc", "select 1"], capture_output=True).returncode == 0
