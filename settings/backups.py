"""Config of the backups component (`langflow:backups`).

A snapshot of the database before every release that changes the Langflow version (a new
version migrates the schema, and an older one cannot run on it), scheduled backups, and the
volume both are kept on. Rules that need other keys (the database type, the data volume) live
in settings/validation.py.
"""

from __future__ import annotations

from typing import Optional

from pydantic import Field, field_validator

from settings.base import Quantity, StrictModel, VolumeConfig, valid
from settings.cron import schedule_problem



def backups_claim_name(app: str) -> str:
    """The backup volume (fixed: renaming it would orphan the backups)."""
    return f"{app}-backups"


class BackupVolume(VolumeConfig):
    size: Quantity = Field("2Gi", description="Backup volume size: room for every snapshot and backup kept.")
    protect: bool = Field(
        True,
        description="Refuse to delete or replace the backup volume (Pulumi `protect`); it is also retained if it "
        "leaves the program.",
    )


class BackupsConfig(StrictModel):
    enabled: Optional[bool] = Field(
        None,
        description="Snapshots before version changes and scheduled backups. Default: on for SQLite on the data "
        "volume and for the program's own PostgreSQL; an external PostgreSQL needs `true` (the Jobs use "
        "Langflow's own database URL); CloudNativePG keeps its own backups.",
    )
    snapshots_kept: int = Field(3, ge=1, le=50, description="Snapshots taken before releases that are kept.")
    schedule: Optional[str] = Field(
        "0 3 * * *",
        description="Cron schedule (UTC) of scheduled backups, as the Kubernetes API server parses it: five fields "
        "(minute 0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC, day of week 0-6 or SUN-SAT; lists, "
        "ranges, steps, `?`), a macro (`@daily`, `@weekly`, ...) or `@every <duration>` (at least 1m). No time "
        "zone in it, and never one that cannot fire (the 31st of February). Null: none.",
    )
    scheduled_kept: int = Field(7, ge=1, le=365, description="Scheduled backups that are kept.")
    volume: BackupVolume = Field(default_factory=BackupVolume, description="The backup volume (never the data volume).")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return value
        problem = schedule_problem(value)
        return valid(value, f"{problem}; null turns scheduled backups off" if problem else None)


def backup_engine(backups: BackupsConfig, database) -> Optional[str]:
    """What takes the backups: `sqlite` and `postgresql` (the program's Jobs: SQLite's backup API, pg_dump with
    Langflow's own URL), `cloudnative-pg` (the operator's own Backup objects), or None (off).

    `database` is the config's `database` section; on by default where the program owns the database.
    """
    postgres = database.postgresql if database.type == "postgresql" else None
    if postgres is not None and postgres.mode == "cloudnative-pg":
        # The operator backs up only to a snapshot class or object store it was given.
        on = postgres.cloudnative_pg.volume_snapshot_class is not None and backups.enabled is not False
        return "cloudnative-pg" if on else None
    if database.type == "sqlite" or (postgres is not None and postgres.mode == "in-cluster"):
        default = True
    else:
        default = False  # an external server: the operator opts in; `url`: not here
    if not (default if backups.enabled is None else backups.enabled):
        return None
    return "sqlite" if database.type == "sqlite" else "postgresql"
