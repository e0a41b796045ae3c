"""The database schema each Langflow release runs: the head of its alembic migrations.

A Langflow version migrates the database to its head at start-up, and an older version cannot run
on a newer schema (../shared/reference/langflow.md, "Downgrades"). So a rollback between two releases
with different heads must restore the database as it was. Heads are read from each release's
package (`python components/backups/langflow_backup.py schema-head` in its environment; the real-
process tests check every version make verify installs). A version not listed here is taken to
change the schema: the safe assumption.
"""

from __future__ import annotations

from typing import Optional

SCHEMA_HEADS = {
    "1.6.4": "d37bc4322900",
    "1.6.5": "d37bc4322900",  # read from the langflow-base 0.6.5 wheel: no migration since 1.6.4
    "1.13.0": "e5a7c9b1d3f2",
}


def schema_head(tag: str) -> Optional[str]:
    """The schema revision Langflow `tag` runs, when known (a suffixed tag runs its version's)."""
    return SCHEMA_HEADS.get(tag) or SCHEMA_HEADS.get(tag.split("-")[0])


def same_schema(tag: str, other: str) -> bool:
    """Whether releases of these two Langflow tags run the same schema (unknown: only the same version)."""
    if tag.split("-")[0] == other.split("-")[0]:
        return True
    head = schema_head(tag)
    return head is not None and head == schema_head(other)
