"""make verify STACK=<stack> [LANGFLOW=<version>]: the stack's Langflow container, run for real.

Exit status 0 when every check passed, 1 when one failed, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from settings.stack_file import EncryptedValues, stack_values
from verify.checks import Verification

PROJECT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(prog="make verify", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--langflow-version", help="run this Langflow release instead of the stack's image tag")
    parser.add_argument("--database-url", help="with database.type url: a scratch database Langflow may migrate")
    args = parser.parse_args()
    try:
        values = stack_values(PROJECT, args.stack)
    except FileNotFoundError:
        print(f"error: no Pulumi.{args.stack}.yaml in {PROJECT}", file=sys.stderr)
        return 2
    except EncryptedValues as error:
        print(f"error: {error}; make verify generates the secrets it needs, so keep them out of the stack file "
              "or pass a copy without them", file=sys.stderr)
        return 2
    verification = Verification(values, PROJECT, args.stack, args.langflow_version, database_url=args.database_url)
    return 0 if verification.run() else 1


if __name__ == "__main__":
    sys.exit(main())
