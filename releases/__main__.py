"""make releases | up [ATOMIC=1] | rollback [TO=<release>] [FLOWS=keep] | restore FROM=<backup> | destroy | recover, for one stack.

CONFIRM=restore (--confirm-restore) allows a rollback across a schema change, and a restore, to
overwrite the database with a backup.

Every command that changes the stack first settles what an interrupted update left (recover:
processes it left running, its stale lock, pending operations; releases/recovery.py) and stops
an update whose Kubernetes API server has not answered for --api-outage-seconds.

Run in the stack's environment (scripts/stack-env.sh). Exit status: 0 done; 1 an update ran
and failed (the message says which release is live now); 2 refused before anything changed.
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import nullcontext
from pathlib import Path

from releases import local_access
from releases.history import ReleaseError
from releases.workflow import ReleaseFailed, StackReleases
from releases.worktree import work_tree_lock

PROJECT = Path(__file__).resolve().parent.parent


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0 (API_OUTAGE=, e.g. 60)")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m releases", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["list", "up", "rollback", "restore", "destroy", "recover"])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--message", default="make up", help="up: what this release is")
    parser.add_argument("--atomic", action="store_true", help="up: return to the live release if this one fails")
    parser.add_argument("--to", type=int, help="rollback: the release number (`make releases`); default: the previous")
    parser.add_argument("--keep-flows", action="store_true", help="rollback: restore the config, keep today's flows")
    parser.add_argument("--from", dest="source", help="restore: the backup's name, or latest")
    parser.add_argument("--confirm-restore", action="store_true",
                        help="rollback, up --atomic, restore: overwrite the database with a backup where needed")
    parser.add_argument("--api-outage-seconds", type=_seconds, default=60,
                        help="stop an update when the Kubernetes API server has not answered for this long")
    args = parser.parse_args(argv)
    # Rollbacks rewrite the work tree (an atomic release too, when it rolls back): one at a time, and never
    # beside a command that reads it.
    rewrites = args.command == "rollback" or (args.command == "up" and args.atomic)
    try:
        with work_tree_lock(PROJECT, f"make {args.command}", exclusive=rewrites) if args.command != "list" \
                else nullcontext():
            _run(args)
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ReleaseFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _run(args: argparse.Namespace) -> None:
    releases = StackReleases(args.stack, PROJECT, api_outage_seconds=args.api_outage_seconds)
    try:
        _command(args, releases)
    except ReleaseFailed:
        if local_access.local_node(os.environ.get("LANGFLOW_LOCAL_CLUSTER_DIR")):
            local_access.report_crashes(releases.settings().config.namespace)
        raise


def _command(args: argparse.Namespace, releases: StackReleases) -> None:
    if args.command == "list":
        print(releases.releases_table())
    elif args.command == "up":
        releases.release(args.message, atomic=args.atomic, confirm_restore=args.confirm_restore)
        _open_locally(releases, args.stack)
    elif args.command == "rollback":
        releases.rollback(args.to, keep_flows=args.keep_flows, confirm_restore=args.confirm_restore)
        _open_locally(releases, args.stack)
    elif args.command == "destroy":
        releases.destroy()
    elif args.command == "recover":
        releases.recover()
        print(f"Stack {args.stack}: nothing left to recover." if not releases.recovered else
              f"Stack {args.stack} recovered; `make preview` shows what the next `make up` changes.")
    elif not args.source:
        raise ReleaseError("restore needs the backup: FROM=<name> (or FROM=latest); nothing was changed")
    else:
        releases.restore_backup(args.source, confirmed=args.confirm_restore)


def _open_locally(releases: StackReleases, stack: str) -> None:
    """On the local cluster's real node: Langflow on 127.0.0.1, and how to sign in (releases/local_access.py)."""
    if local_access.local_node(os.environ.get("LANGFLOW_LOCAL_CLUSTER_DIR")):
        local_access.announce({name: output.value for name, output in releases.stack.outputs().items()}, stack)


if __name__ == "__main__":
    sys.exit(main())
