"""Snapshots, scheduled backups and restores of Langflow's database (standard library only).

The same file runs in the cluster (mounted from a ConfigMap into the Langflow image, whose Python
it uses) and in the tests, against real Langflow databases. SQLite is copied with SQLite's online
backup API, never a plain copy of a live file. For PostgreSQL this file does the bookkeeping
around `pg_dump` and `pg_restore`, which run in the postgres image between its steps.

Every backup is two files in the backup folder: `<name>.sqlite` or `<name>.dump`, and
`<name>.json` with what it holds. A name is `<kind>-<UTC time>-<label>`: a `snapshot` is taken
before a release that changes the Langflow version (its label names that release), a
`scheduled` one by the CronJob, a `pre-restore` one just before a restore overwrites the
database, so even a mistaken restore loses nothing.

Commands (exit 0 on success, 1 on failure, 2 on refusal; a refusal changes nothing):
  snapshot --database FILE --kind K --label L   SQLite: copy the database, then keep the newest --keep
  restore --database FILE [--from NAME]         SQLite: restore a backup (needs CONFIRM=restore)
  plan-dump --kind K --label L                  PostgreSQL: name the dump pg_dump writes next
  finish --kind K --label L                     PostgreSQL: record that dump, then keep the newest --keep
  plan-restore [--from NAME]                    PostgreSQL: check the backup, name the dump to restore
  list                                          every backup, newest first, as JSON lines
  schema-head                                   the schema revision the installed Langflow migrates to
Options also come from the env the Jobs set: BACKUP_DIR, WORK_DIR, BACKUP_KIND, BACKUP_LABEL,
BACKUP_KEEP, RESTORE_FROM, CONFIRM, and LANGFLOW_VERSION (recorded with each backup).
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import importlib.util
import json
import os
import re
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from typing import Optional

CONFIRMATION = "restore"
EXTENSIONS = {"sqlite": ".sqlite", "postgresql": ".dump"}
KINDS = ("snapshot", "scheduled", "pre-restore")


class Refused(Exception):
    """Nothing was changed, and the reason says why."""


# --- what a backup is ----------------------------------------------------------------------------

def backup_name(kind: str, label: str, now: Optional[dt.datetime] = None) -> str:
    when = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return f"{kind}-{when}-{re.sub(r'[^0-9A-Za-z.]+', '-', label).strip('-') or 'unlabelled'}"


def fresh_name(folder: Path, kind: str, label: str) -> str:
    """A name no backup in `folder` has (two in one second get a counter)."""
    name = base = backup_name(kind, label)
    counter = 1
    while any(folder.glob(f"{name}.*")) or any(folder.glob(f".{name}.*")):
        counter += 1
        name = f"{base}-{counter}"
    return name


def backups(folder: Path) -> list[dict]:
    """Every complete backup (data file and record), newest first."""
    found = []
    for record in folder.glob("*.json"):
        try:
            meta = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        if (folder / meta.get("file", "")).is_file():
            found.append(meta)
    return sorted(found, key=lambda m: (m["created"], m["name"]), reverse=True)


def choose(folder: Path, wanted: str, kind: Optional[str] = None, label: Optional[str] = None) -> dict:
    """The backup named `wanted`, or with `wanted` = latest the newest one (of that kind and label, if given)."""
    every = backups(folder)
    if wanted != "latest":
        for meta in every:
            if meta["name"] == wanted:
                return meta
        raise Refused(f"no backup named {wanted!r} in {folder}; there are: "
                      f"{', '.join(m['name'] for m in every) or 'none'}")
    matching = [m for m in every if (kind is None or m["kind"] == kind) and (label is None or m["label"] == label)]
    if not matching:
        what = " ".join(filter(None, [kind, f"labelled {label!r}" if label else None])) or "backup"
        raise Refused(f"no {what} in {folder}")
    return matching[0]


def prune(folder: Path, kind: str, keep: int) -> list[str]:
    """Delete all but the newest `keep` backups of one kind; the names deleted."""
    gone = []
    for meta in [m for m in backups(folder) if m["kind"] == kind][keep:]:
        for path in (folder / meta["file"], folder / f"{meta['name']}.json"):
            path.unlink(missing_ok=True)
        gone.append(meta["name"])
    return gone


def record(folder: Path, name: str, kind: str, label: str, engine: str, revision: Optional[str],
           langflow_version: str) -> dict:
    meta = {"name": name, "kind": kind, "label": label, "engine": engine, "file": name + EXTENSIONS[engine],
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "schema_revision": revision, "langflow_version": langflow_version,
            "bytes": (folder / (name + EXTENSIONS[engine])).stat().st_size}
    # Written last, and atomically: a record means a complete backup.
    partial = folder / f".{name}.json"
    partial.write_text(json.dumps(meta, indent=1) + "\n")
    partial.replace(folder / f"{name}.json")
    return meta


# --- the schema an image runs --------------------------------------------------------------------

def _migrations() -> dict[str, set[str]]:
    """The installed Langflow's alembic scripts: revision -> the revisions it migrates from."""
    found = importlib.util.find_spec("langflow")
    if found is None or not found.submodule_search_locations:
        raise Refused("Langflow is not installed here: the restore must run in the Langflow image")
    out: dict[str, set[str]] = {}
    for script in (Path(list(found.submodule_search_locations)[0]) / "alembic" / "versions").glob("*.py"):
        values = {}
        for node in ast.parse(script.read_text()).body:
            target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision") and node.value is not None:
                values[target.id] = ast.literal_eval(node.value)
        if isinstance(values.get("revision"), str):
            down = values.get("down_revision") or ()
            out[values["revision"]] = {down} if isinstance(down, str) else set(down)
    return out


def known_revisions() -> set[str]:
    """Every schema revision the installed Langflow can migrate from (its alembic scripts)."""
    return set(_migrations())


def schema_head() -> str:
    """The newest revision of the installed Langflow: the one no other migration starts from."""
    migrations = _migrations()
    (head,) = set(migrations) - set().union(*migrations.values())
    return head


def check_restorable(meta: dict, confirmation: Optional[str]) -> None:
    if confirmation != CONFIRMATION:
        raise Refused(f"restoring {meta['name']} overwrites the database: everything written since "
                      f"{meta['created']} is lost. Set CONFIRM={CONFIRMATION} to proceed")
    revision = meta.get("schema_revision")
    if revision and revision not in known_revisions():
        raise Refused(f"{meta['name']} holds schema revision {revision} (Langflow {meta['langflow_version']}), "
                      f"newer than this image knows: restore it with that Langflow version or a later one")


# --- SQLite --------------------------------------------------------------------------------------

def sqlite_revision(database: Path) -> Optional[str]:
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
            row = connection.execute("select version_num from alembic_version").fetchone()
        return row[0] if row else None
    except sqlite3.Error:
        return None


def sqlite_copy(source: Path, target: Path) -> None:
    """A consistent copy of a database that may be in use, by SQLite's own backup API."""
    partial = target.with_name(f".{target.name}")
    partial.unlink(missing_ok=True)
    _backup(sqlite3.connect(f"file:{source}?mode=ro", uri=True), sqlite3.connect(partial))
    partial.replace(target)


def _backup(source: sqlite3.Connection, target: sqlite3.Connection) -> None:
    with closing(source), closing(target):
        source.backup(target)


def sqlite_snapshot(folder: Path, database: Path, kind: str, label: str, keep: int, version: str) -> Optional[dict]:
    if not database.is_file():
        return None  # a first release: nothing to keep yet
    name = fresh_name(folder, kind, label)
    sqlite_copy(database, folder / (name + EXTENSIONS["sqlite"]))
    meta = record(folder, name, kind, label, "sqlite", sqlite_revision(folder / (name + ".sqlite")), version)
    prune(folder, kind, keep)
    return meta


def sqlite_restore(folder: Path, database: Path, meta: dict, version: str) -> None:
    # What the database holds now stays retrievable: a restore is undone by restoring this one.
    sqlite_snapshot(folder, database, "pre-restore", "before-restore", keep=3, version=version)
    _backup(sqlite3.connect(f"file:{folder / meta['file']}?mode=ro", uri=True), sqlite3.connect(database))


# --- command line ---------------------------------------------------------------------------------

def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="langflow_backup", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["snapshot", "plan-dump", "finish", "restore", "plan-restore", "list",
                                            "schema-head"])
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("BACKUP_DIR", "/backups")))
    parser.add_argument("--work-dir", type=Path, default=Path(os.environ.get("WORK_DIR", "/work")),
                        help="PostgreSQL: where the steps of one Job hand over the dump's name and revision")
    parser.add_argument("--engine", choices=sorted(EXTENSIONS), default=os.environ.get("BACKUP_ENGINE", "sqlite"))
    parser.add_argument("--database", type=Path, help="the SQLite file")
    parser.add_argument("--kind", choices=KINDS, default=os.environ.get("BACKUP_KIND") or None)
    parser.add_argument("--label", default=os.environ.get("BACKUP_LABEL") or None)
    parser.add_argument("--keep", type=int, default=int(os.environ.get("BACKUP_KEEP") or "3"))
    parser.add_argument("--from", dest="source", default=os.environ.get("RESTORE_FROM") or "latest",
                        help="a backup's name, or latest (narrowed by --kind and --label when given)")
    args = parser.parse_args(argv)
    version = os.environ.get("LANGFLOW_VERSION", "")
    folder, work = args.dir, args.work_dir
    try:
        if args.command == "schema-head":
            print(schema_head())
        elif args.command == "list":
            for meta in backups(folder):
                print(json.dumps(meta))
        elif args.command == "snapshot":
            folder.mkdir(parents=True, exist_ok=True)
            kind = args.kind or "snapshot"
            meta = sqlite_snapshot(folder, args.database, kind, args.label or "", args.keep, version)
            print(f"{kind}: {meta['name']} (schema {meta['schema_revision']})" if meta
                  else f"{kind}: no database at {args.database} yet, nothing to copy")
        elif args.command == "plan-dump":
            folder.mkdir(parents=True, exist_ok=True)
            (work / "name").write_text(fresh_name(folder, args.kind or "snapshot", args.label or ""))
        elif args.command == "finish":
            revision_file = work / "revision"
            revision = (revision_file.read_text().strip() if revision_file.is_file() else "") or None
            kind = args.kind or "snapshot"
            meta = record(folder, (work / "name").read_text().strip(), kind, args.label or "", args.engine, revision,
                          version)
            prune(folder, kind, args.keep)
            print(f"{kind}: {meta['name']} (schema {revision})")
        else:
            meta = choose(folder, args.source, args.kind, args.label)
            check_restorable(meta, os.environ.get("CONFIRM"))
            if meta["engine"] != args.engine:
                raise Refused(f"{meta['name']} is a {meta['engine']} backup; this database is {args.engine}")
            if args.command == "restore":
                sqlite_restore(folder, args.database, meta, version)
                print(f"restored {meta['name']} (schema {meta['schema_revision']}, taken {meta['created']})")
            else:
                # The dump step also keeps what the database holds now, under this name.
                (work / "source").write_text(str(folder / meta["file"]))
                (work / "name").write_text(fresh_name(folder, "pre-restore", "before-restore"))
    except Refused as refusal:
        print(f"refused: {refusal}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
