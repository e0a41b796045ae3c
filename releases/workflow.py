"""Releases of one stack on Pulumi's Automation API: release (optionally atomic), list, roll back.

Pulumi has no rollback: a rollback re-runs the program with an earlier release's inputs.
Those are the stack file and the flows folder, restored from the commit the release
recorded (releases/snapshot.py), then checked against the config Pulumi's history holds
for that release. The program's own code stays as it is now.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from pulumi import automation as auto
from pulumi.automation.errors import CommandError, ConcurrentUpdateError

from releases import processes
from releases.database import CONFIRMATION, RestoreFailed, StackDatabase, require_backups
from releases.history import (
    RECOVERY_SUMMARY, ReleaseError, ReleaseRecord, SchemaRollback, Update, compose_message, live_release,
    normal_config, require_unchanged, rollback_target, schema_rollback, table, updates,
)
from releases.kept import kept_summary
from releases.recovery import (
    ROLLED_OUT_KINDS, PendingOperation, hand_over_fields, holder_is_gone, lock_holders, lock_refusal,
    other_pulumi_managers, pending_operations, plan_recovery, recovery_summary, refresh_targets, repair_state_file,
    rollout_status, settle_action, stack_outputs, state_field_manager, state_file, state_ids,
)
from releases.snapshot import Repository, read_tree, write_tree
from releases.watch import ApiServerWatch, kubernetes_probe
from settings import ConfigError, StackSettings, load_settings, project_values
from settings.cluster import ClusterUnavailable, api_client
from settings.flows import FlowError, flows_digest, load_flow_folder
from settings.loader import PROJECT, parse_config
from settings.model import FlowsConfig
from settings.schemas import schema_head


# How long recovery waits for a StatefulSet's rollout that an interrupted update had started (a Deployment
# has its own deadline, progressDeadlineSeconds, which is rollout.timeout_seconds).
ROLLOUT_WAIT_SECONDS = 600


class ReleaseFailed(Exception):
    """An update ran and failed; the message says why and what state the stack is in now."""


class _SavedFiles:
    """Files of the work tree that an operation rewrites, to put back when it does not go through."""

    def __init__(self, project_dir: Path, paths: list[str]):
        self.project_dir = project_dir
        self.saved = {p: read_tree(project_dir, p) for p in dict.fromkeys(paths)}

    def put_back(self) -> None:
        for path, files in self.saved.items():
            write_tree(self.project_dir, path, files)


class StackReleases:
    """One stack of the project in `project_dir`, run in the environment scripts/stack-env.sh sets."""

    def __init__(self, stack_name: str, project_dir: Path, out: Callable[[str], None] = print,
                 api_outage_seconds: float = 60):
        self.project_dir = project_dir.resolve()
        self.name = stack_name.split("/")[-1]
        self.out = out
        self.api_outage_seconds = api_outage_seconds
        self.recovered: list[str] = []  # what recovery did before this run's update, for its message
        # Pulumi and its plugins inherit the mark: a later run finds what this one leaves running.
        os.environ[processes.RUN_MARKER] = f"{processes.run_id(os.getpid())} {self.project_dir}"
        # Before Pulumi reads it: a state file an earlier run was killed in the middle of writing.
        repaired = repair_state_file(state_file(os.environ.get("PULUMI_BACKEND_URL", ""), PROJECT, self.name))
        if repaired:
            self.recovered.append(repaired)
            out(f"recovered: {repaired}")
        self.stack = auto.select_stack(stack_name, work_dir=str(self.project_dir))
        self.stack_file = f"Pulumi.{self.name}.yaml"
        self._kubernetes = None
        self._config_read: Optional[tuple[bytes, dict[str, tuple[Any, bool]]]] = None

    # --- reading ----------------------------------------------------------------------------------

    def history(self) -> list[Update]:
        return updates(self.stack.history(show_secrets=True))

    def releases_table(self) -> str:
        return table(self.history())

    def _config(self) -> dict[str, tuple[Any, bool]]:
        """The stack's config (`pulumi config`), read again only when its stack file changed (a rollback
        rewrites it): each read is a CLI run."""
        stack_file = self.project_dir / self.stack_file
        text = stack_file.read_bytes() if stack_file.exists() else b""
        if self._config_read is None or self._config_read[0] != text:
            self._config_read = (text, {k: (v.value, v.secret) for k, v in self.stack.get_all_config().items()})
        return self._config_read[1]

    def settings(self) -> StackSettings:
        """The stack file's config and the flows it points at, validated as the program does."""
        try:
            return load_settings(_values(self._config()), self.project_dir)
        except ConfigError as error:
            raise ReleaseError(f"the stack's config has problems; nothing was changed:\n{error}") from None

    def record(self, settings: StackSettings, repository: Optional[Repository]) -> ReleaseRecord:
        flows = _flows_revision(settings.config.flows, lambda: flows_digest(settings.flows))
        snapshot = repository.snapshot(self._paths(settings.config.flows), self.name) if repository else None
        return ReleaseRecord(settings.config.image.reference(), flows, snapshot, schema_head(settings.config.image.tag))

    def _current_flows(self) -> FlowsConfig:
        """The flows the stack file points at now; the default folder when its config is broken (a rollback
        must still be able to repair that)."""
        try:
            return parse_config(_values(self._config())).flows
        except ConfigError:
            return FlowsConfig()

    def _paths(self, *flows: FlowsConfig) -> list[str]:
        """What a release is made of, besides the program: the stack file and the flows folders."""
        return [self.stack_file] + [f.folder for f in flows if f.source == "folder"]

    # --- releasing --------------------------------------------------------------------------------

    def release(self, message: str, *, atomic: bool = False, confirm_restore: bool = False) -> None:
        """`pulumi up` with the release recorded; with `atomic`, a failed one returns to the live release
        (across a schema change only with `confirm_restore`: the database is restored too)."""
        repository = Repository.find(self.project_dir)
        settings = self.settings()
        self.recover()
        before = live_release(self.history()) if atomic else None
        try:
            self._up(message, self.record(settings, repository))
            return
        except ReleaseFailed as failure:
            if not atomic:
                raise
            reason = str(failure)
        history = self.history()
        failed = history[-1] if history else None
        if failed is None or failed.resource_steps == 0 or (before is not None and failed.number == before.number):
            still = f"release {before.number} is still live" if before else "nothing is live"
            raise ReleaseFailed(f"{reason}\nThe failed update stopped before it reached any resource: {still}.")
        if before is None:
            raise ReleaseFailed(f"{reason}\nThis was the stack's first release: there is no earlier one to return "
                                "to, so the stack stays as the failed update left it.")
        if repository is None:
            raise ReleaseFailed(f"{reason}\nAtomic rollback needs the project in git (to restore release "
                                f"{before.number}'s files): roll back by hand.")
        self.out(f"\nRelease {failed.number} failed; atomic: rolling back to release {before.number}.")
        # The operator's files hold the failed release: keep them, to put back afterwards.
        operator_files = _SavedFiles(self.project_dir, self._paths(settings.config.flows))
        try:
            self._rollback(failed, before, repository, "atomic rollback", confirm_restore=confirm_restore,
                           planned=history)
        except (ReleaseError, ReleaseFailed) as error:
            raise ReleaseFailed(f"{reason}\nThe atomic rollback to release {before.number} failed too: {error}")
        finally:
            operator_files.put_back()
        raise ReleaseFailed(
            f"{reason}\nAtomic release: rolled back to release {before.number}, which is live again. "
            f"{self.stack_file} and the flows still hold the failed release's changes: fix them and release "
            "again, or `git checkout` them.")

    def rollback(self, to: Optional[int] = None, *, keep_flows: bool = False, confirm_restore: bool = False) -> None:
        repository = Repository.find(self.project_dir)
        if repository is None:
            raise ReleaseError(f"{self.project_dir} is not in a git repository: a rollback restores the stack file "
                               "and the flows from git, and must tell uncommitted changes apart")
        history = self.history()
        live, target = rollback_target(history, to)
        paths = self._paths(self._current_flows(), _flows_config(target))
        dirty = repository.uncommitted(paths)
        if dirty:
            raise ReleaseError("uncommitted changes in " + ", ".join(dirty) + ": a rollback rewrites these files; "
                               "commit or stash them first. Nothing was changed.")
        settled = len(self.recovered)
        self.recover()
        self._rollback(live, target, repository, "rollback", keep_flows=keep_flows, confirm_restore=confirm_restore,
                       planned=history if len(self.recovered) == settled else None)
        self.out(f"\nRolled back from release {live.number} to {target.number}. {self.stack_file} and the flows "
                 "now match what is deployed: commit them.")

    def _rollback(self, live: Update, target: Update, repository: Repository, what: str, *,
                  keep_flows: bool = False, confirm_restore: bool = False,
                  planned: Optional[list[Update]] = None) -> None:
        """`planned`: the history `live` and `target` were chosen from, when nothing ran since it was read."""
        target_flows = _flows_config(target)
        planned = planned if planned is not None else self.history()
        change = schema_rollback(planned, live, target)
        database = self._database_for(change, live, target, confirm_restore) if change else None
        saved = _SavedFiles(self.project_dir, self._paths(self._current_flows(), target_flows))
        try:
            settings = self._restore(target, target_flows, repository, keep_flows)
            record = self.record(settings, repository)
            self.out(f"{what.capitalize()} from release {live.number} to {target.number}: image {record.image}, "
                     f"flows {record.flows[:12]}.")
            if database is not None:
                # The program is run once before the database is overwritten: a rollback it cannot run stops
                # here, with the database as it was.
                self.out("Preview:")
                self._run(lambda: self.stack.preview(diff=True, on_output=self.out, color="never",
                                                     policy_packs=self._policy_packs()))
            require_unchanged(planned, self.history(), what)
            if database is not None:
                self._restore_database(database, change)
            # Otherwise no preview first: the update shows each change as a diff while it applies it (a preview
            # would run the program, load the plugins and the policy pack a second time).
            self._up(f"{what} from release {live.number} to {target.number}", record, diff=True)
            if database is not None:
                database.clear_stop_mark()
        except BaseException:
            saved.put_back()
            raise

    # --- the database, across a schema change ------------------------------------------------------

    def _database_for(self, change: SchemaRollback, live: Update, target: Update, confirmed: bool) -> StackDatabase:
        """Refuse, changing nothing, unless a snapshot exists and the operator confirmed the loss."""
        why = (f"release {live.number} runs Langflow {change.live_tag}, which migrated the database to a newer "
               f"schema; Langflow {change.target_tag} (release {target.number}) cannot run on it, so the database "
               f"must be restored from the snapshot taken before Langflow {change.live_tag} was released")
        backups = require_backups(self._output("backups"), why)
        loss = (f"everything written since {change.since:%Y-%m-%d %H:%M:%S} UTC (flows, users, API keys, "
                "variables, messages) is lost; the database as it is now is kept as a pre-restore backup")
        if not confirmed:
            raise ReleaseError(f"{why}: {loss}. To go ahead: add CONFIRM={CONFIRMATION} (--confirm-restore). "
                               "Nothing was changed.")
        self.out(f"Schema change: {why}.\nConfirmed: {loss}.")
        return self._stack_database(backups)

    def _restore_database(self, database: StackDatabase, change: SchemaRollback) -> None:
        try:
            database.stop_langflow()
            database.restore({"RESTORE_FROM": "latest", "BACKUP_KIND": "snapshot", "BACKUP_LABEL": change.snapshot_label,
                              "CONFIRM": CONFIRMATION})
        except RestoreFailed as error:
            database.start_langflow()
            raise ReleaseFailed(f"{error}. Langflow {change.live_tag} was started again on its database, "
                                "which the restore leaves as it was.") from None
        self.out(f"Database restored from the snapshot {change.snapshot_label}.")

    def restore_backup(self, source: str, *, confirmed: bool) -> None:
        """`make restore`: the live release, on the database as the backup `source` holds it."""
        why = f"restoring {source} overwrites the database of stack {self.name}"
        backups = require_backups(self._output("backups"), why)
        if not confirmed:
            raise ReleaseError(f"{why}: everything written since that backup was taken is lost (the database as it "
                               f"is now is kept as a pre-restore backup). To go ahead: add CONFIRM={CONFIRMATION}. "
                               "Nothing was changed.")
        self.recover()
        database = self._stack_database(backups)
        try:
            database.stop_langflow()
            database.restore({"RESTORE_FROM": source, "BACKUP_KIND": "", "BACKUP_LABEL": "", "CONFIRM": CONFIRMATION})
        except RestoreFailed as error:
            raise ReleaseFailed(f"{error}. Langflow was started again with {database.replicas} pod(s).") from None
        finally:
            database.start_langflow()
        self.out(f"Restored {source}; Langflow started again with {database.replicas} pod(s).")

    def _stack_database(self, backups: dict[str, Any]) -> StackDatabase:
        return StackDatabase(backups, self._kubernetes_client(), out=self.out)

    def _output(self, name: str) -> Any:
        found = self.stack.outputs().get(name)
        return found.value if found is not None else None

    def _up(self, summary: str, record: ReleaseRecord, *, diff: bool = False) -> None:
        # The message is composed when the update starts: a stale lock cleared on the way is named too.
        self._run(lambda: self._update("--message", compose_message(_with_recovery(summary, self.recovered), record),
                                       *(["--diff"] if diff else []),
                                       *(arg for pack in self._policy_packs() for arg in ("--policy-pack", pack))))

    def _update(self, *args: str) -> None:
        """`pulumi up --skip-preview` as the Automation API's `Stack.up` runs it, without the summary that one
        reads afterwards and nothing here uses (three more CLI runs: the outputs twice, the history; about a
        second per release)."""
        workspace = self.stack.workspace
        workspace.pulumi_command.run(
            ["up", "--yes", "--skip-preview", "--color", "never", *args, "--exec-kind", "auto.local",
             "--stack", self.stack.name], workspace.work_dir, {}, self.out)

    def _policy_packs(self) -> list[str]:
        """The project's policy pack (policy/), run by every release and rollback. The Automation API's up skips
        its preview: the engine refuses a resource that breaks a mandatory policy when it reaches it (what came
        before it in the update is applied), and judges the stack policies once every resource is applied."""
        return [str(self.project_dir / "policy")]

    def destroy(self) -> None:
        """`make destroy`: every resource but the protected ones and what they depend on (releases/kept.py), then
        what stays, said."""
        self.recover()
        self._run(lambda: self.stack.destroy(exclude_protected=True, on_output=self.out, color="never",
                                             message=_with_recovery("make destroy", self.recovered)))
        for line in kept_summary(self._deployment()):
            self.out(line)

    def _run(self, operation: Callable[[], Any], *, lock_cleared: bool = False) -> Any:
        probe = self._api_server_probe()
        try:
            with ApiServerWatch(probe, self.api_outage_seconds) as watch:
                try:
                    return operation()
                except CommandError as error:
                    again = ("When it answers again, run the same command: it settles what this update left (its "
                             "lock, pending operations) and goes on.")
                    if watch.silent_for is not None:
                        raise ReleaseFailed(
                            f"the Kubernetes API server did not answer for {watch.silent_for:.0f} s, so the update "
                            f"was stopped (the bound is {self.api_outage_seconds:.0f} s: --api-outage-seconds, "
                            f"API_OUTAGE=). {again}") from None
                    if not isinstance(error, ConcurrentUpdateError) and not probe():
                        raise ReleaseFailed(f"{_why(error)}\nThe Kubernetes API server does not answer. {again}") \
                            from None
                    raise
        except ConcurrentUpdateError as error:
            holders = lock_holders(str(error))
            gone = [h for h in holders if holder_is_gone(h)]
            if lock_cleared or not holders or len(gone) < len(holders):
                raise ReleaseError(lock_refusal(self.name, holders, gone)) from None
            # Pulumi's own way to remove a lock; it removes them all, and all of them are stale.
            self._recovered("cleared the stale lock of " + ", ".join(map(str, gone)) + ": that process no longer runs")
            self.stack.cancel()
            return self._run(operation, lock_cleared=True)
        except CommandError as error:
            raise ReleaseFailed(_why(error)) from None

    def _api_server_probe(self) -> Callable[[], bool]:
        try:
            return kubernetes_probe(self._kubernetes_client())
        except ClusterUnavailable:
            return lambda: True  # no kubeconfig to probe with: the update reports that itself

    def _kubernetes_client(self):
        """The official client for the cluster the stack's provider deploys to (its kubeconfig and context)."""
        if self._kubernetes is None:
            config = self._config()
            self._kubernetes = api_client(config.get("kubernetes:kubeconfig", (None, False))[0],
                                          config.get("kubernetes:context", (None, False))[0])
        return self._kubernetes

    # --- recovering from an interrupted update ----------------------------------------------------

    def recover(self) -> None:
        """Settle what an interrupted update left, without a prompt: processes it left running, its stale
        lock, pending operations. What will be done is printed before it is done."""
        for action in self._end_orphans():
            self._recovered(action)
        deployment = self._deployment()
        backups = stack_outputs(deployment).get("backups")
        if backups and backups.get("restore_template"):
            started = self._stack_database(backups).start_after_interrupted_restore()
            if started:
                self._recovered(started)
        operations = pending_operations(deployment)
        if not operations:
            return
        plan = plan_recovery(operations, state_ids(deployment), self._live_metadata)
        settle = [settle_action(op) for op in operations if op.kind != "creating"]
        self.out(f"An interrupted update left {len(operations)} pending operation(s) in stack {self.name}. "
                 "Recovery will:\n" + "\n".join(f"  - {action}" for action in settle + plan.actions()))
        # First a refresh of what the state holds of them: it takes the stack's lock, so a live holder stops
        # recovery here, before anything changed (a stale lock is cleared), and it settles updates and deletes.
        self._refresh(operations, "settle pending updates and deletes", clear_pending_creates=False)
        for action in settle:
            self._recovered(action)
        for op in operations:
            if op.kind == "updating" and op.kubernetes_object and op.kubernetes_object[1] in ROLLED_OUT_KINDS:
                self._await_rollout(op)
        # Planned again under the lock: what was pending may have been a live update's, which ended meanwhile.
        deployment = self._deployment()
        operations = pending_operations(deployment)
        replanned = plan_recovery(operations, state_ids(deployment), self._live_metadata)
        if replanned != plan:
            plan = replanned
            self.out("The state changed meanwhile. Recovery will now:\n" +
                     "\n".join(f"  - {action}" for action in plan.actions()))
        if not plan:
            return
        if plan.adopt:
            # A targeted update of just those resources: the provider's server-side apply takes the object over.
            self._run(lambda: self._update(
                *(arg for op in plan.adopt for arg in ("--target", op.urn)),
                "--message", f"{RECOVERY_SUMMARY} adopt what an interrupted update created"))
        if plan.hand_over:
            # The adopting create applied under a field manager of its own; the interrupted one's still holds the
            # fields, and would make the next change of one fail with a field conflict (releases/recovery.py).
            deployment = self._deployment()
            for op in plan.hand_over:
                if manager := state_field_manager(deployment, op.urn):
                    self._hand_over_fields(op, manager)
        for op in plan.remove:
            _, _, namespace, name = op.kubernetes_object
            self._kubernetes_resource(op).delete(name=name, namespace=namespace)
        self._refresh(operations, "clear pending creates", clear_pending_creates=True)
        for action in plan.actions():
            self._recovered(action)

    def _hand_over_fields(self, operation: PendingOperation, manager: str) -> None:
        """Hand the fields other Pulumi field managers hold of an object over to `manager` (a JSON patch of its
        managedFields, made only if the object did not change since it was read: its controller writes to it)."""
        from kubernetes.dynamic.exceptions import ConflictError, NotFoundError, UnprocessibleEntityError

        _, kind, namespace, name = operation.kubernetes_object
        resource = self._kubernetes_resource(operation)
        for _ in range(10):
            try:
                metadata = resource.get(name=name, namespace=namespace).to_dict()["metadata"]
            except NotFoundError:
                return
            entries = metadata.get("managedFields") or []
            handed = hand_over_fields(entries, manager)
            if handed is None:
                return
            try:
                patched = resource.patch(
                    name=name, namespace=namespace, content_type="application/json-patch+json",
                    body=[{"op": "test", "path": "/metadata/resourceVersion", "value": metadata["resourceVersion"]},
                          {"op": "replace", "path": "/metadata/managedFields", "value": handed}])
            except (ConflictError, UnprocessibleEntityError):  # changed since it was read (the test failed)
                time.sleep(0.2)
                continue
            # The API server ignores managedFields it cannot decode, without an error: check they were taken.
            if other_pulumi_managers(patched.to_dict()["metadata"].get("managedFields") or [], manager):
                break
            self._recovered(f"{kind} {namespace}/{name}: handed the fields of field manager(s) "
                            f"{', '.join(other_pulumi_managers(entries, manager))} over to {manager}, the one the "
                            "state records")
            return
        raise ReleaseFailed(f"the fields of {kind} {namespace}/{name} could not be handed over to field manager "
                            f"{manager}: the next change of one may fail with a field conflict. Run the command again.")

    def _await_rollout(self, operation: PendingOperation) -> None:
        """Wait, as the interrupted update would have, until the workload it was updating has rolled out:
        the refresh made the state match the cluster, so the next update will not wait for it."""
        from kubernetes.dynamic.exceptions import NotFoundError

        _, kind, namespace, name = operation.kubernetes_object
        resource, started = self._kubernetes_resource(operation), time.monotonic()
        while True:
            try:
                workload = resource.get(name=name, namespace=namespace).to_dict()
            except NotFoundError:
                return  # deleted since: nothing rolls out
            waiting = rollout_status(workload)
            # A Deployment reports a stuck rollout itself after progressDeadlineSeconds; a StatefulSet does not.
            deadline = started + (workload["spec"].get("progressDeadlineSeconds") or ROLLOUT_WAIT_SECONDS) + 60
            if waiting is None:
                self._recovered(f"{kind} {namespace}/{name} finished the rollout the interrupted update started")
                return
            if waiting.startswith("failed:") or time.monotonic() > deadline:
                raise ReleaseFailed(f"the interrupted update's rollout of {kind} {namespace}/{name} did not complete "
                                    f"({waiting.removeprefix('failed: ')}): fix the cause (`kubectl -n {namespace} "
                                    f"describe {kind.lower()} {name}`) and release again, or `make rollback`.")
            time.sleep(2)

    def _deployment(self) -> dict[str, Any]:
        return self.stack.export_stack().deployment or {}

    def _refresh(self, operations: list[PendingOperation], why: str, *, clear_pending_creates: bool) -> None:
        deployment = self._deployment()
        in_state = state_ids(deployment)
        self._run(lambda: self.stack.refresh(
            target=refresh_targets(operations, in_state) or None,
            clear_pending_creates=clear_pending_creates, on_output=self.out, color="never",
            message=f"{RECOVERY_SUMMARY} {why}"))

    def _recovered(self, action: str) -> None:
        self.out(f"Recovery: {action}.")
        self.recovered.append(action)

    def _end_orphans(self) -> list[str]:
        """Processes of this project's earlier runs that outlived them (plugins in their own process groups)."""
        own = os.environ[processes.RUN_MARKER]
        left: dict[str, list[int]] = {}
        for pid, mark in processes.marked(processes.RUN_MARKER).items():
            run, _, project = mark.partition(" ")
            if mark != own and project == str(self.project_dir) and not processes.run_alive(run):
                left.setdefault(run, []).append(pid)
        return [f"ended {len(ended)} process(es) the interrupted run {run.split('@')[0]} left running "
                f"(pids {', '.join(map(str, ended))})"
                for run, pids in left.items() if (ended := processes.end(pids))]

    def _kubernetes_resource(self, operation: PendingOperation):
        from kubernetes.dynamic import DynamicClient

        api_version, kind, _, _ = operation.kubernetes_object
        return DynamicClient(self._kubernetes_client()).resources.get(api_version=api_version, kind=kind)

    def _live_metadata(self, operation: PendingOperation) -> Optional[dict]:
        """The object's metadata as the cluster has it; None when it does not exist."""
        from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

        _, _, namespace, name = operation.kubernetes_object
        try:
            return self._kubernetes_resource(operation).get(name=name, namespace=namespace).to_dict()["metadata"]
        except (NotFoundError, ResourceNotFoundError):
            return None
        except Exception as error:  # noqa: BLE001 - unreachable cluster, bad kubeconfig: cannot decide
            raise ReleaseError(f"the pending create of {operation.describe()} cannot be settled: the cluster does "
                               f"not answer ({str(error).splitlines()[0][:200]}). Run this again when it does; "
                               "nothing was changed.") from None


    # --- restoring a release's files --------------------------------------------------------------

    def _restore(self, target: Update, flows: FlowsConfig, repository: Repository,
                 keep_flows: bool) -> StackSettings:
        """Make the stack file and the flows those of `target`; return its settings."""
        commit = _source_commit(target, repository)
        stack_file = repository.files_at(commit, self.stack_file).get(self.stack_file) if commit else None
        if stack_file is not None:
            (self.project_dir / self.stack_file).write_bytes(stack_file)
        if stack_file is None or not self._config_is(target):
            self._restore_config_from_history(target)
            if not self._config_is(target):
                raise ReleaseError(f"could not restore the config of release {target.number}; nothing was changed")
        if flows.source == "folder" and not keep_flows:
            wanted = target.record.flows if target.record else None
            if commit is not None:
                write_tree(self.project_dir, flows.folder, repository.files_at(commit, flows.folder))
            have = _flows_revision(flows, lambda: flows_digest(load_flow_folder(self.project_dir, flows.folder)))
            if (wanted is None and commit is None) or (wanted is not None and wanted != have):
                raise ReleaseError(
                    f"the flows of release {target.number} are not in this repository (no commit recorded, or it "
                    "is missing here: fetch `refs/langflow/*` from the clone it was released from); restore the "
                    "flows folder by hand, or roll back the config alone with FLOWS=keep. Nothing was changed.")
        try:
            return load_settings(_values(self._config()), self.project_dir)
        except ConfigError as error:
            raise ReleaseError(f"release {target.number}'s config is not valid for the program as it is now; "
                               f"nothing was changed:\n{error}") from None

    def _config_is(self, target: Update) -> bool:
        return normal_config(self._config()) == normal_config(target.config)

    def _restore_config_from_history(self, target: Update) -> None:
        """No stack file to restore: write the history's values, keeping every secret encrypted."""
        self.stack.remove_all_config(list(self._config()))
        for key, (value, secret) in target.config.items():
            parsed = _json_object(value)
            if parsed is None:
                self.stack.set_config(key, auto.ConfigValue(value, secret=secret))
            else:
                # History marks an object with one secret inside as secret as a whole: encrypt each string in it.
                self.stack.set_all_config({path: auto.ConfigValue(_leaf_text(leaf), secret=secret and isinstance(leaf, str))
                                           for path, leaf in _leaves(key, parsed)}, path=True)


def _with_recovery(summary: str, recovered: list[str]) -> str:
    return f"{summary}\n{recovery_summary(recovered)}" if recovered else summary


def _values(config: dict[str, tuple[Any, bool]]) -> dict[str, Any]:
    return project_values({k: v for k, (v, _) in config.items()})


def _flows_config(update: Update) -> FlowsConfig:
    try:
        return parse_config(_values(dict(update.config))).flows
    except ConfigError as error:
        raise ReleaseError(f"release {update.number}'s config is not valid for the program as it is now:\n"
                           f"{error}") from None


def _flows_revision(flows: FlowsConfig, digest: Callable[[], str]) -> str:
    if flows.source == "claim":
        return f"claim:{flows.claim_name}"
    if flows.source == "none":
        return "none"
    try:
        return digest()
    except FlowError:
        return "invalid"


def _source_commit(target: Update, repository: Repository) -> Optional[str]:
    """The commit holding `target`'s stack file and flows: its snapshot, or the clean HEAD it ran from."""
    candidates = [target.record.snapshot if target.record else None, None if target.dirty else target.commit]
    return next((c for c in candidates if c and repository.has_commit(c)), None)


def _json_object(value: Any) -> Optional[Any]:
    if not isinstance(value, str) or value[:1] not in "{[":
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _leaves(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    """`pulumi config set --path` paths of every leaf of an object value."""
    if isinstance(value, dict):
        for key, item in value.items():
            step = f".{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else f'["{key}"]'
            yield from _leaves(prefix + step, item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(f"{prefix}[{index}]", item)
    else:
        yield prefix, value


def _leaf_text(leaf: Any) -> str:
    return leaf if isinstance(leaf, str) else json.dumps(leaf)


def _why(error: CommandError) -> str:
    """The lines of a failed command's output that say why, without the progress around them."""
    lines = [line.strip() for line in str(error).splitlines() if re.search(r"\berror\b", line, re.I)]
    return "\n".join(dict.fromkeys(lines)) or "the update failed (see its output above)"
