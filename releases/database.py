"""Restoring a stack's database, on the cluster: stop Langflow, run a restore Job, start it again.

The program deploys the restore as a suspended CronJob (components/backups/spec.py): this module
starts a Job from it, as `kubectl create job --from=cronjob/...` does, with the backup to restore
and the operator's confirmation in its env. A restore never runs while a Langflow pod is up: the
Deployment is scaled to zero first, and the pods must be gone. What the stack exports as `backups`
names the objects.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from releases.history import ReleaseError

CONFIRMATION = "restore"  # the value of CONFIRM the restore Job requires (components/backups/langflow_backup.py)
# A restore Job started here is not the program's: the cluster removes it a day after it ended.
FINISHED_JOB_TTL_SECONDS = 86400
# Set on the Deployment while Langflow is stopped for a restore: the replicas to return to. A run killed
# meanwhile leaves it, and the next command starts Langflow again from it (releases/recovery.py).
STOPPED_ANNOTATION = "langflow.org/stopped-for-restore"


class RestoreFailed(Exception):
    pass


class StackDatabase:
    """The database of one deployed stack, through the objects in its `backups` output."""

    def __init__(self, backups: dict[str, Any], api, out: Callable[[str], None] = print, timeout: float = 900):
        """`api`: the official client's ApiClient for the stack's cluster (settings.cluster.api_client)."""
        from kubernetes import client

        self.backups, self.out, self.timeout = backups, out, timeout
        self.replicas: Optional[int] = None  # what Langflow had before it was stopped
        self.namespace, self.deployment = backups["namespace"], backups["deployment"]
        self.apps, self.batch, self.core, self.api = client.AppsV1Api(api), client.BatchV1Api(api), \
            client.CoreV1Api(api), api

    def stop_langflow(self) -> int:
        """Scale Langflow to zero and wait until no pod of it is left; the replicas it had."""
        scale = self.apps.read_namespaced_deployment_scale(self.deployment, self.namespace)
        self.replicas = replicas = scale.spec.replicas or 0
        self._annotate(str(replicas))
        self.apps.patch_namespaced_deployment_scale(self.deployment, self.namespace, {"spec": {"replicas": 0}})
        selector = self.apps.read_namespaced_deployment(self.deployment, self.namespace).spec.selector.match_labels
        labels = ",".join(f"{k}={v}" for k, v in selector.items())
        self._wait(lambda: not [p for p in self.core.list_namespaced_pod(self.namespace, label_selector=labels).items
                                if p.status.phase not in ("Succeeded", "Failed")],
                   f"the Langflow pods ({labels}) to be gone")
        self.out(f"Langflow stopped: {replicas} pod(s) scaled to 0, none left.")
        return replicas

    def start_langflow(self) -> None:
        """Back to the replicas it had before `stop_langflow`."""
        if self.replicas is not None:
            self.apps.patch_namespaced_deployment_scale(self.deployment, self.namespace,
                                                        {"spec": {"replicas": self.replicas}})
            self._annotate(None)

    def start_after_interrupted_restore(self) -> Optional[str]:
        """Langflow stopped by a restore whose run was killed: started again once no restore Job runs.
        What was done, or None when Langflow was not stopped so."""
        from kubernetes.client.exceptions import ApiException

        try:
            deployment = self.apps.read_namespaced_deployment(self.deployment, self.namespace, _request_timeout=30)
        except ApiException as error:
            if error.status == 404:
                return None  # not deployed (yet, or any more)
            raise ReleaseError(f"cannot read Deployment {self.namespace}/{self.deployment}: {error.reason}. "
                               "Nothing was changed.") from None
        except Exception as error:  # noqa: BLE001 - no answer: the update could not go on either
            raise ReleaseError(f"the cluster does not answer ({str(error).splitlines()[0][:200]}): run this again "
                               "when it does. Nothing was changed.") from None
        stopped = (deployment.metadata.annotations or {}).get(STOPPED_ANNOTATION)
        if stopped is None:
            return None
        template = self.backups["restore_template"]
        jobs = self.batch.list_namespaced_job(self.namespace).items
        running = [j.metadata.name for j in jobs if j.metadata.name.startswith(f"{template}-") and j.status.active]
        if running:
            raise ReleaseError(f"Langflow is stopped for a restore, and restore Job {running[0]} still runs: wait "
                               "for it to end, then run this again. Nothing was changed.")
        self.replicas = int(stopped)
        self.start_langflow()
        return (f"started Langflow again with {stopped} pod(s): an interrupted restore or rollback had stopped it "
                "(the database is as the last restore Job left it)")

    def clear_stop_mark(self) -> None:
        """The update that followed the restore set the replicas itself: nothing is left to start again."""
        self._annotate(None)

    def _annotate(self, replicas: Optional[str]) -> None:
        self.apps.patch_namespaced_deployment(self.deployment, self.namespace,
                                              {"metadata": {"annotations": {STOPPED_ANNOTATION: replicas}}})

    def restore(self, env: dict[str, str]) -> str:
        """Run a Job of the restore template with `env` set in every step; the Job's name."""
        template = self.backups["restore_template"]
        cron = self.batch.read_namespaced_cron_job(template, self.namespace)
        spec = self.api.sanitize_for_serialization(cron.spec.job_template.spec)
        pod = spec["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            container["env"] = [e for e in container.get("env", []) if e["name"] not in env] + \
                [{"name": k, "value": v} for k, v in env.items()]
        spec["ttlSecondsAfterFinished"] = FINISHED_JOB_TTL_SECONDS
        name = f"{template}-{datetime.now(timezone.utc).strftime('%Y%m%d%H%M%S')}"
        labels = dict(cron.spec.job_template.metadata.labels or {}) if cron.spec.job_template.metadata else {}
        self.batch.create_namespaced_job(self.namespace, {
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": self.namespace, "labels": labels,
                         "annotations": {"cronjob.kubernetes.io/instantiate": "manual"}},
            "spec": spec,
        })
        self.out(f"Restore Job {name} started.")

        def finished() -> Optional[str]:
            status = self.batch.read_namespaced_job_status(name, self.namespace).status
            for condition in status.conditions or []:
                if condition.status == "True" and condition.type in ("Complete", "Failed"):
                    return condition.type
            return None

        outcome = self._wait(finished, f"restore Job {name}")
        if outcome != "Complete":
            raise RestoreFailed(f"restore Job {name} failed (it refuses an unconfirmed restore, a missing backup "
                                f"and a backup newer than the image: `kubectl logs -n {self.namespace} job/{name} "
                                "--all-containers` says which)")
        return name

    def _wait(self, ready: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + self.timeout
        while True:
            result = ready()
            if result:
                return result
            if time.monotonic() > deadline:
                raise RestoreFailed(f"gave up waiting for {what} after {self.timeout:.0f} s")
            time.sleep(1)


def require_backups(backups: Optional[dict[str, Any]], why: str) -> dict[str, Any]:
    if backups and backups.get("engine") == "cloudnative-pg":
        raise ReleaseError(f"{why}. CloudNativePG restores into a new cluster, not in place: create one with "
                           "`bootstrap.recovery` from the operator's Backup named for that release "
                           f"(`kubectl -n {backups['namespace']} get backups.postgresql.cnpg.io`), point the stack's "
                           "database at it, then roll back. Nothing was changed.")
    if not backups or not backups.get("engine") or not backups.get("restore_template"):
        raise ReleaseError(f"{why}, but this stack takes no backups (backups.enabled is off, or its database is "
                           "not one the program backs up), so there is nothing to restore. Nothing was changed.")
    return backups
