"""A stack's releases, read from its update history: numbering, what is live, what to roll back to.

Pure: it takes the Automation API's `UpdateSummary` objects (or anything with the same
attributes) and returns plain data, so it is tested against recorded histories without
Pulumi. What the history does not hold by itself (the deployed image, the flows revision
and the commit with the stack file and flows as they were released) is recorded by
`releases` as trailers of the update message, the way git records trailers in a commit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping, Optional, Sequence

from settings.model import ImageConfig
from settings.schemas import same_schema, schema_head

IMAGE_TRAILER = "Release-Image"
FLOWS_TRAILER = "Release-Flows"
SNAPSHOT_TRAILER = "Release-Snapshot"
SCHEMA_TRAILER = "Release-Schema"
TRAILERS = (IMAGE_TRAILER, FLOWS_TRAILER, SNAPSHOT_TRAILER, SCHEMA_TRAILER)
# How the updates that recovery runs itself begin (releases/recovery.py): they are no releases.
RECOVERY_SUMMARY = "recovery:"
_TRAILER_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*): (.+)$")


class ReleaseError(Exception):
    """A release operation that cannot go ahead; the message says why and what to do."""


@dataclass(frozen=True)
class ReleaseRecord:
    """What `releases` records beside Pulumi's own history for each update it runs."""

    image: str
    flows: str  # the flows revision: a sha256 of the flow files, or `none` / `claim:<name>`
    snapshot: Optional[str] = None  # a commit holding the stack file and the flows as released
    schema: Optional[str] = None  # the database schema revision the Langflow image runs, when known


def compose_message(summary: str, record: ReleaseRecord) -> str:
    """The update message: the operator's summary, then the record as trailers."""
    lines = [f"{IMAGE_TRAILER}: {record.image}", f"{FLOWS_TRAILER}: {record.flows}"]
    if record.snapshot:
        lines.append(f"{SNAPSHOT_TRAILER}: {record.snapshot}")
    if record.schema:
        lines.append(f"{SCHEMA_TRAILER}: {record.schema}")
    return f"{summary.strip() or 'release'}\n\n" + "\n".join(lines)


def parse_message(message: str) -> tuple[str, Optional[ReleaseRecord]]:
    """The summary and, when the message ends with release trailers, the record."""
    head, _, tail = (message or "").rstrip().rpartition("\n\n")
    trailers = dict(m.groups() for m in map(_TRAILER_LINE.match, tail.splitlines()) if m) if head else {}
    if not head or IMAGE_TRAILER not in trailers or FLOWS_TRAILER not in trailers:
        return (message or "").strip(), None
    return head.strip(), ReleaseRecord(trailers[IMAGE_TRAILER], trailers[FLOWS_TRAILER],
                                       trailers.get(SNAPSHOT_TRAILER), trailers.get(SCHEMA_TRAILER))


@dataclass(frozen=True)
class Update:
    """One entry of a stack's history."""

    number: int  # Pulumi Cloud's version; on a self-managed backend (versions all 0) the position, 1 = oldest
    kind: str  # update, refresh, destroy, ...
    started: datetime
    result: str  # succeeded, failed, in-progress
    summary: str  # the message without the release trailers
    config: Mapping[str, tuple[Any, bool]]  # key -> (value, secret), as the update ran with it
    record: Optional[ReleaseRecord] = None
    commit: Optional[str] = None  # git HEAD of the project when the update ran
    dirty: bool = False  # the work tree had uncommitted changes then
    # Resources the engine got to, unchanged ones included; 0 when it never reached them (a config error).
    # A failed update does not count the step that failed: this is no count of changes.
    resource_steps: int = 0
    environment: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_release(self) -> bool:
        return self.kind == "update" and not self.summary.startswith(RECOVERY_SUMMARY)

    @property
    def succeeded(self) -> bool:
        return self.result == "succeeded"

    def same_release_as(self, other: "Update") -> bool:
        """Rolling from one to the other would change nothing: same config, same flows."""
        flows = (self.record.flows if self.record else None, other.record.flows if other.record else None)
        return normal_config(self.config) == normal_config(other.config) and flows[0] == flows[1]


def normal_config(config: Mapping[str, tuple[Any, bool]]) -> dict[str, Any]:
    def value(raw: Any) -> Any:
        # Object values arrive as JSON text whose key order may differ between two reads.
        try:
            return json.loads(raw) if isinstance(raw, str) and raw[:1] in "{[" else raw
        except ValueError:
            return raw
    return {key: value(raw) for key, (raw, _) in config.items()}


def updates(summaries: Iterable[Any]) -> list[Update]:
    """Entries of `Stack.history()` (newest first, as Pulumi lists them) as Updates, oldest first."""
    entries = list(summaries)
    out = []
    for index, entry in enumerate(entries):
        summary, record = parse_message(entry.message)
        environment = dict(entry.environment or {})
        out.append(Update(
            number=entry.version or len(entries) - index,
            kind=entry.kind,
            started=entry.start_time,
            result=entry.result,
            summary=summary,
            config={key: (item.value, item.secret) for key, item in (entry.config or {}).items()},
            record=record,
            commit=environment.get("git.head"),
            dirty=environment.get("git.dirty") == "true",
            resource_steps=sum((entry.resource_changes or {}).values()),
            environment=environment,
        ))
    return sorted(out, key=lambda u: u.number)


def live_release(history: Sequence[Update]) -> Optional[Update]:
    """The release the stack runs now: the newest that succeeded, unless a destroy came after it."""
    for update in reversed(history):
        if update.kind == "destroy" and update.succeeded:
            return None
        if update.is_release and update.succeeded:
            return update
    return None


def require_unchanged(planned: Sequence[Update], current: Sequence[Update], what: str) -> None:
    """Refuse when the history gained an update since `what` was planned from it.

    A preview takes no lock on a self-managed backend: another update may end while one is previewed, and
    what was planned (a rollback's live release and target) would then be stale. An update still running
    is refused by the lock when this one starts; this catches the one that ended meanwhile."""
    def newest(history: Sequence[Update]) -> Optional[tuple[int, datetime]]:
        return (history[-1].number, history[-1].started) if history else None
    if newest(current) == newest(planned):
        return
    since = newest(planned)
    meanwhile = [u for u in current if since is None or (u.number, u.started) > since]
    listed = ", ".join(f"{u.number} ({u.kind}, {u.result})" for u in meanwhile) or "an update"
    raise ReleaseError(f"another update ran while this {what} was prepared: {listed}. What it planned may be "
                       "stale, so it stops here. Nothing was changed: see `make releases`, then run it again.")


def find(history: Sequence[Update], number: int) -> Update:
    for update in history:
        if update.number == number:
            return update
    known = [u.number for u in history if u.is_release]
    listed = f"releases are {known[0]} to {known[-1]}" if known else "it has no releases yet"
    raise ReleaseError(f"there is no release {number} in this stack's history ({listed}); "
                       "`make releases` lists them")


def rollback_target(history: Sequence[Update], to: Optional[int] = None) -> tuple[Update, Update]:
    """(live, target): the release to leave and the one to return to.

    Without `to`: the newest successful release before the live one that differs from it, so
    a repeated `make up` of the same config is not a step back. With `to`: that release.
    """
    live = live_release(history)
    if live is None:
        raise ReleaseError("no release of this stack is live (it was never released, or was destroyed): "
                           "there is nothing to roll back; release with `make up`")
    if to is None:
        earlier = [u for u in history if u.is_release and u.succeeded and u.number < live.number
                   and not u.same_release_as(live)]
        if not earlier:
            raise ReleaseError(f"release {live.number} is live and no earlier successful release differs from it: "
                               "there is nothing to roll back to")
        return live, earlier[-1]
    target = find(history, to)
    if not target.is_release:
        raise ReleaseError(f"{to} is a {target.kind}, not a release; `make releases` lists the releases")
    if not target.succeeded:
        raise ReleaseError(f"release {to} {'failed' if target.result == 'failed' else 'did not finish'}: "
                           "roll back to a release that succeeded (`make releases` marks them)")
    if target.number == live.number:
        raise ReleaseError(f"release {to} is already live: nothing to do")
    return live, target


def table(history: Sequence[Update], *, now_live: Optional[Update] = None) -> str:
    """The releases, oldest first, as a text table; the live one marked."""
    live = now_live or live_release(history)
    rows = [("#", "started (UTC)", "result", "image", "schema", "flows", "commit", "message")]
    for update in history:
        if not update.is_release:
            continue
        record = update.record
        flows = record.flows if record else "?"
        flows = flows[:12] if re.fullmatch(r"[0-9a-f]{64}", flows) else flows
        commit = (record.snapshot if record and record.snapshot else update.commit) or "-"
        commit = commit[:10] + ("+dirty" if update.dirty and not (record and record.snapshot) else "")
        marker = "  <- live" if live is not None and update.number == live.number else ""
        tag = image_tag(update.config)
        schema = (record.schema if record and record.schema else schema_head(tag) if tag else None) or "?"
        rows.append((str(update.number), update.started.strftime("%Y-%m-%d %H:%M:%S"), update.result,
                     record.image if record else f"tag {tag}" if tag else "?", schema[:12],
                     flows, commit, (update.summary.splitlines() or [""])[0][:60] + marker))
    if len(rows) == 1:
        return "no releases yet: `make up` makes the first"
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in rows)


def image_tag(config: Mapping[str, tuple[Any, bool]]) -> Optional[str]:
    """The Langflow tag a release's config pins (its default when the config leaves it out)."""
    raw = config.get("langflow:image", (None, False))[0]
    try:
        image = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        image = None
    tag = image.get("tag") if isinstance(image, dict) else None
    return tag if isinstance(tag, str) else ImageConfig.model_fields["tag"].default


@dataclass(frozen=True)
class SchemaRollback:
    """A rollback to an older Langflow schema: the database must be restored from a snapshot."""

    live_tag: str
    target_tag: str
    snapshot_label: str  # the snapshot taken before the first release of the live version
    since: datetime  # when that release started: what was written after is lost


def schema_rollback(history: Sequence[Update], live: Update, target: Update) -> Optional[SchemaRollback]:
    """None when `target` runs on the database as `live` left it (same schema, or a newer version)."""
    live_tag, target_tag = image_tag(live.config), image_tag(target.config)
    if same_schema(live_tag, target_tag) or not _version(target_tag) < _version(live_tag):
        return None
    # The snapshot was taken when the live version was first released after another one.
    first = live
    for update in reversed([u for u in history if u.is_release and u.succeeded and u.number <= live.number]):
        if image_tag(update.config) != live_tag:
            break
        first = update
    return SchemaRollback(live_tag, target_tag, f"before-{live_tag}", first.started)


def _version(tag: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", tag.split("-")[0])[:3])
