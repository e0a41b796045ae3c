"""`make sync-flows STACK=<s> URL=<base url>`: the stack's flows, applied to the Langflow at URL through its API.

The folder is first validated as `pulumi preview` validates it: a broken flow is refused here, before
Langflow is called. Credentials come from the environment (LANGFLOW_API_KEY, or LANGFLOW_SUPERUSER and
LANGFLOW_SUPERUSER_PASSWORD; none with login off). Exit 0 when every flow is in place, 1 when the sync
failed (the flows that were live stay live), 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flowsync.sync import main as sync_main
from settings import ConfigError, load_settings
from settings.flows import flows_digest
from settings.stack_file import stack_values

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make sync-flows", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="the stack whose flows folder to apply (STACK=)")
    parser.add_argument("--url", required=True, help="Langflow's base URL, e.g. http://127.0.0.1:7860 (URL=)")
    parser.add_argument("--project", type=Path, default=REPO, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.url:
        print("make sync-flows: URL= is required: Langflow's base URL, e.g. URL=http://127.0.0.1:7860", file=sys.stderr)
        return 2
    try:
        settings = load_settings(stack_values(args.project, args.stack), args.project)
    except (ConfigError, OSError, ValueError) as error:  # ValueError: a stack file with encrypted values
        print(f"make sync-flows: nothing was sent to Langflow:\n{error}", file=sys.stderr)
        return 2
    config = settings.config
    if config.flows.source != "folder":
        print(f"make sync-flows: stack {args.stack} has flows.source {config.flows.source}: there is no folder of "
              "flows to sync", file=sys.stderr)
        return 2
    # The module the Job runs, on the folder just validated.
    return sync_main(["--url", args.url, "--folder", str(args.project / config.flows.folder),
                      "--revision", flows_digest(settings.flows)])


if __name__ == "__main__":
    sys.exit(main())
