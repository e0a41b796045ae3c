"""What an interrupted update leaves behind, and how the next command settles it without a prompt.

An update killed mid-way (a cancelled CI job, a laptop asleep, an OOM kill) leaves up to three
things: the stack's lock, held by a process that is gone; pending operations in the state, for
the resource steps that were in flight; and the Pulumi plugins, which run in process groups of
their own and outlive a run killed with its group. The decisions are plain functions of what
Pulumi and the cluster report, tested without either; `StackReleases.recover` (releases/workflow.py)
applies them.

Measured on Pulumi 3.259: `pulumi refresh --import-pending-creates <urn> <id>` drops the pending
create without adding the resource, so the object is then unknown to the state; `pulumi import`
takes the live object as the resource's inputs, and the next update replaces it (a Service over
its clusterIP). An object the interrupted run created is adopted instead by a targeted update: the
Kubernetes provider creates with server-side apply, which takes over the existing object (same
uid, nothing recreated). That works for objects the program names; one the provider named (a
random suffix) gets a new name on every create, so the leftover is deleted once the update makes
it again from the values the state keeps (a Secret's generated credentials among them). Data
kinds are never deleted.

Server-side apply records who set each field (`metadata.managedFields`), and pulumi-kubernetes 4.25
applies as `pulumi-kubernetes-<random>`, drawn anew by each create and kept in the state
(`fieldManagerName` and `__fieldManager`, provider/pkg/provider/provider.go). The adopting create
draws another name, so both runs' managers hold the fields, and the next change of one fails with
a field conflict. The provider moves fields over from client-side apply's and kubectl's managers
only (`fixCSAFieldManagers`, pkg/await/await.go), not from another `pulumi-kubernetes-*` one, so
recovery hands the killed run's fields over to the manager the state records.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Optional

from releases import processes

# A lock the self-managed backend reports (pkg/backend/diy/lock.go, `checkForLock`).
_LOCK_LINE = re.compile(r"^\s*(?P<where>\S+): created by (?P<user>[^@\s]+)@(?P<host>\S+) \(pid (?P<pid>\d+)\) "
                        r"at (?P<at>\S+)\s*$", re.M)
# The lock's time has whole seconds; its process started before it. A process that started later than
# this after the lock's time is another one, which was given the same pid.
_CLOCK_SLACK = timedelta(seconds=2)


@dataclass(frozen=True)
class LockHolder:
    user: str
    host: str
    pid: int
    since: Optional[datetime]
    where: str

    def __str__(self) -> str:
        since = f", since {self.since:%Y-%m-%d %H:%M:%S} UTC" if self.since else ""
        return f"{self.user}@{self.host} (pid {self.pid}{since}; lock {self.where})"


def lock_holders(error_text: str) -> list[LockHolder]:
    """The holders a failed lock attempt names; empty when it names none (Pulumi Cloud)."""
    holders = []
    for m in _LOCK_LINE.finditer(error_text):
        try:
            since = datetime.fromisoformat(m["at"].replace("Z", "+00:00"))
        except ValueError:
            since = None
        holders.append(LockHolder(m["user"], m["host"], int(m["pid"]), since, m["where"]))
    return holders


def holder_is_gone(holder: LockHolder, host: Optional[str] = None,
                   started: Callable[[int], Optional[datetime]] = processes.started_at,
                   running: Callable[[int], bool] = processes.running) -> bool:
    """The lock's process ran on this host and no longer runs: its pid is free, or now belongs to a
    process that started after the lock was taken. A holder on another host is never judged gone."""
    if holder.host != (host or socket.gethostname()):
        return False
    if not running(holder.pid):
        return True
    began = started(holder.pid)
    return holder.since is not None and began is not None and began > holder.since + _CLOCK_SLACK


def lock_refusal(stack: str, holders: list[LockHolder], gone: list[LockHolder]) -> str:
    """Why a lock is left alone, for the person who may clear it after checking."""
    live = [h for h in holders if h not in gone]
    clear = f"`bash scripts/pulumi.sh {stack} cancel --yes` (pulumi cancel)"
    if not holders:
        return (f"another update of stack {stack} is in progress (the backend names no holder). Wait for it to "
                f"end; if it died, clear its lock with {clear} after checking. Nothing was changed.")
    where = "; ".join(f"{h}: {'running on this host' if h.host == socket.gethostname() else 'on another host'}"
                      for h in live)
    return (f"stack {stack} is locked by {where}. Such a lock is never cleared here: wait for that update to "
            f"end. If it is stuck, stop that process; if it died on another host, check there. Then clear the "
            f"lock with {clear}. Nothing was changed.")


@dataclass(frozen=True)
class PendingOperation:
    """A resource step that was in flight when an update was interrupted."""

    kind: str  # creating, updating, deleting, reading, importing
    urn: str
    type: str
    inputs: dict = field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]

    @property
    def kubernetes_object(self) -> Optional[tuple[str, str, Optional[str], str]]:
        """(apiVersion, kind, namespace, name) of a Kubernetes object; None for other providers."""
        match = re.fullmatch(r"kubernetes:([^:]+):([^:]+)", self.type)
        metadata = self.inputs.get("metadata") or {}
        if not match or not isinstance(metadata.get("name"), str):
            return None
        group = match[1].split("/")
        api_version = group[1] if group[0] == "core" else "/".join(group)
        return api_version, match[2], metadata.get("namespace"), metadata["name"]

    def describe(self) -> str:
        obj = self.kubernetes_object
        where = f" {obj[2]}/{obj[3]}" if obj and obj[2] else f" {obj[3]}" if obj else ""
        return f"{self.type.rsplit(':', 1)[-1]} {self.name}{where}"


def pending_operations(deployment: dict[str, Any]) -> list[PendingOperation]:
    """The pending operations of an exported deployment (`pulumi stack export`)."""
    return [PendingOperation(op.get("type", ""), op["resource"]["urn"], op["resource"].get("type", ""),
                             op["resource"].get("inputs") or {})
            for op in deployment.get("pending_operations") or []]


def stack_outputs(deployment: dict[str, Any]) -> dict[str, Any]:
    """The stack's outputs as an exported deployment holds them (secret ones stay encrypted there)."""
    return next((r.get("outputs") or {} for r in deployment.get("resources") or []
                 if r.get("type") == "pulumi:pulumi:Stack"), {})


def state_ids(deployment: dict[str, Any]) -> dict[str, str]:
    """URN -> id of every resource in an exported deployment."""
    return {r["urn"]: r.get("id", "") for r in deployment.get("resources") or []}


# What pulumi-kubernetes marks an object it named itself with (the resource name and a random suffix).
AUTONAMED = "pulumi.com/autonamed"
# Kinds that may hold data: recovery never deletes one.
DATA_KINDS = {"PersistentVolumeClaim", "PersistentVolume"}


def settle_action(op: PendingOperation) -> str:
    """An update or delete in flight is settled by a refresh of its resource (it reads the object)."""
    return f"refresh {op.describe()}, interrupted while {op.kind}"


@dataclass(frozen=True)
class RecoveryPlan:
    """What to do about each pending create (the refresh that comes first settles the other operations)."""

    adopt: tuple[PendingOperation, ...] = ()  # created in the cluster, unknown to the state: taken over as it is
    remove: tuple[PendingOperation, ...] = ()  # created under a generated name the program cannot take over
    clear: tuple[tuple[PendingOperation, str], ...] = ()  # pending creates with nothing to adopt, and why
    # Objects the state holds once adopted (or held already: a recovery killed after its adoption) whose fields
    # an interrupted create may have applied under a field manager the state does not record.
    hand_over: tuple[PendingOperation, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.adopt or self.remove or self.clear)

    def actions(self) -> list[str]:
        return ([f"adopt {op.describe()}: the interrupted run created it; it is kept as it is (same uid), and the "
                 "fields its field manager applied are handed over to the adopting one, so that later changes meet "
                 "no field conflict" for op in self.adopt]
                + [f"delete {op.describe()}: the interrupted run created it under a generated name, which no update "
                   "can take over; the update makes it again from the values the state keeps" for op in self.remove]
                + [f"clear the pending create of {op.describe()}: {why}" for op, why in self.clear]
                + [f"hand the fields another Pulumi field manager applied to {op.describe()}, if any, over to the one "
                   "the state records" for op in self.hand_over if op not in self.adopt])


def plan_recovery(operations: list[PendingOperation], in_state: dict[str, str],
                  lookup: Callable[[PendingOperation], Optional[dict]]) -> RecoveryPlan:
    """Adopt what an interrupted create left in the cluster, delete what it left under a generated name,
    clear the creates that left nothing. `lookup` asks the cluster for a Kubernetes object's metadata
    (None: it does not exist). Other pending operations are not this plan's."""
    adopt, remove, clear, hand_over = [], [], [], []
    for op in operations:
        if op.kind != "creating":
            continue
        obj = op.kubernetes_object
        metadata = lookup(op) if obj is not None else None
        if obj is None:
            clear.append((op, "nothing outside the state holds it"))
        elif metadata is None:
            clear.append((op, "it does not exist in the cluster"))
        elif (metadata.get("annotations") or {}).get(AUTONAMED) == "true" \
                and in_state.get(op.urn, "").rsplit("/", 1)[-1] != obj[3]:
            if obj[1] in DATA_KINDS:
                clear.append((op, "no update can take it over (the provider named it), and it may hold data, so it "
                                  "is kept: delete it by hand once you know it holds nothing"))
            else:
                remove.append(op)
        elif op.urn in in_state:
            clear.append((op, "the state holds the resource, and the update settles it"))
            hand_over.append(op)
        else:
            adopt.append(op)
            hand_over.append(op)
    return RecoveryPlan(tuple(adopt), tuple(remove), tuple(clear), tuple(hand_over))


def refresh_targets(operations: list[PendingOperation], in_state: dict[str, str]) -> list[str]:
    """What a recovery refresh names: the resources of `operations` that the state holds (a refresh refuses
    others), and the stack itself, so that a refresh with nothing else to read touches nothing. Empty when
    the state holds no resource at all (an update killed at its very start)."""
    stack = [urn for urn in in_state if urn.split("::")[-2] == "pulumi:pulumi:Stack"]
    return stack + [op.urn for op in operations if op.urn in in_state and op.urn not in stack]


# The field managers pulumi-kubernetes applies under in server-side apply mode, and where its state keeps the one
# of each resource (provider/pkg/provider/provider.go, fieldManagerName and fieldManagerKey).
PULUMI_FIELD_MANAGER_PREFIX = "pulumi-kubernetes-"
FIELD_MANAGER_KEY = "__fieldManager"


def state_field_manager(deployment: dict[str, Any], urn: str) -> Optional[str]:
    """The field manager the state records for a resource; None when it holds none."""
    return next(((r.get("outputs") or {}).get(FIELD_MANAGER_KEY) for r in deployment.get("resources") or []
                 if r.get("urn") == urn), None)


def _applied_by(entry: dict, manager: Optional[str] = None) -> bool:
    """A managedFields entry of a server-side apply to the object itself (not to its status)."""
    return (entry.get("operation") == "Apply" and not entry.get("subresource")
            and (entry.get("manager") == manager if manager else
                 str(entry.get("manager", "")).startswith(PULUMI_FIELD_MANAGER_PREFIX)))


def _other_pulumi_entries(managed_fields: list[dict], manager: str) -> list[dict]:
    return [e for e in managed_fields if _applied_by(e) and e["manager"] != manager]


def other_pulumi_managers(managed_fields: list[dict], manager: str) -> list[str]:
    """The Pulumi field managers other than `manager` that hold fields of an object (an interrupted create's)."""
    return [e["manager"] for e in _other_pulumi_entries(managed_fields, manager)]


def _union(fields: dict, more: dict) -> dict:
    """The union of two FieldsV1 sets (a tree of `f:`/`k:`/`v:`/`i:` keys; `.` marks a node as a member)."""
    merged = dict(fields)
    for key, child in more.items():
        merged[key] = _union(merged[key], child) if isinstance(merged.get(key), dict) else child
    return merged


def hand_over_fields(managed_fields: list[dict], manager: str) -> Optional[list[dict]]:
    """An object's managedFields with the fields of the other Pulumi managers merged into `manager`'s apply entry
    (or, when it has none, the first of them renamed), as the provider moves fields over from the managers it knows
    (fluxcd ssa's PatchReplaceFieldsManagers). `manager` then owns all Pulumi applied: it can change them, and its
    next apply removes what the program no longer sets. Other managers' entries stay. None: nothing to hand over."""
    handed = _other_pulumi_entries(managed_fields, manager)
    if not handed:
        return None
    kept = [e for e in managed_fields if not any(e is h for h in handed)]
    fields: dict = {}
    for entry in handed:
        fields = _union(fields, entry.get("fieldsV1") or {})
    own = next((e for e in kept if _applied_by(e, manager)), None)
    if own is None:
        return kept + [{**handed[0], "manager": manager, "fieldsV1": fields}]
    return [{**e, "fieldsV1": _union(e.get("fieldsV1") or {}, fields)} if e is own else e for e in kept]


# Workloads whose update Pulumi waits on until they have rolled out: an update of one interrupted and then
# refreshed leaves the state matching the cluster, so the next update sees no change and would not wait.
ROLLED_OUT_KINDS = {"Deployment", "StatefulSet"}


def rollout_status(obj: dict[str, Any]) -> Optional[str]:
    """None once a Deployment or StatefulSet has rolled out (as `kubectl rollout status` judges it);
    otherwise what it waits for, starting with "failed:" when it never will."""
    metadata, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    wanted = spec.get("replicas", 1)
    if status.get("observedGeneration", 0) < metadata.get("generation", 0):
        return "the controller to see the new spec"
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return f"failed: {condition.get('message') or 'its progress deadline passed'}"
    updated = status.get("updatedReplicas", 0)
    if obj.get("kind") == "StatefulSet":
        if status.get("updateRevision") and status.get("currentRevision") != status.get("updateRevision"):
            return f"{updated} of {wanted} pods updated"
        return None if status.get("readyReplicas", 0) >= wanted else f"{status.get('readyReplicas', 0)} of {wanted} pods ready"
    if updated < wanted:
        return f"{updated} of {wanted} pods updated"
    if status.get("replicas", 0) > updated:
        return f"{status.get('replicas', 0) - updated} old pod(s) to end"
    if status.get("availableReplicas", 0) < updated:
        return f"{status.get('availableReplicas', 0)} of {updated} updated pods available"
    return None


def recovery_summary(actions: list[str]) -> str:
    """The line an update's message gets for what was recovered before it."""
    return "recovered first: " + "; ".join(actions) if actions else ""


# --- a state file cut short by the kill ----------------------------------------------------------

def state_file(backend_url: str, project: str, stack: str) -> Optional[Path]:
    """The self-managed backend's state file of `project`/`stack` (file:// backends only; None otherwise)."""
    if not backend_url.startswith("file://"):
        return None
    root = Path(os.path.expanduser(backend_url.removeprefix("file://")))
    folder = root / ".pulumi" / "stacks" / project
    for name in (f"{stack}.json", f"{stack}.json.gz"):
        if (folder / name).exists() or (folder / f"{name}.bak").exists():
            return folder / name
    return None


def _readable(path: Path) -> bool:
    try:
        raw = path.read_bytes()
        json.loads(gzip.decompress(raw) if path.name.endswith((".gz", ".gz.bak")) else raw)
        return True
    except (OSError, ValueError, EOFError, gzip.BadGzipFile):
        return False


def repair_state_file(path: Optional[Path], now: Optional[datetime] = None) -> Optional[str]:
    """A kill while the backend rewrote a stack's state leaves it cut short, or missing, or its metadata file
    (`<file>.attrs`, written beside it) empty: Pulumi then says `failed to load checkpoint: EOF`. A cut or
    missing state is replaced by the backend's `.bak`, the checkpoint before; a broken metadata file is set
    aside (the state reads without it). What is set aside is kept, `.cut-<time>`. What was done, or None."""
    if path is None:
        return None
    stamp = f"cut-{(now or datetime.now()):%Y%m%d%H%M%S}"
    done = []
    attrs = path.with_name(path.name + ".attrs")
    if attrs.exists() and not _readable(attrs):
        attrs.rename(attrs.with_name(f"{attrs.name}.{stamp}"))
        done.append(f"its metadata file was cut short (kept as {attrs.name}.{stamp})")
    backup = path.with_name(path.name + ".bak")
    if not (path.exists() and _readable(path)) and _readable(backup):
        what = "missing"
        if path.exists():
            path.rename(path.with_name(f"{path.name}.{stamp}"))
            what = f"cut short (kept as {path.name}.{stamp})"
        shutil.copy2(backup, path)
        done.insert(0, f"it was {what}: restored the checkpoint before it ({backup.name})")
    if not done:
        return None
    return (f"the stack's state file was left broken by an interrupted update: {'; '.join(done)}; its pending "
            "operations are settled next")
