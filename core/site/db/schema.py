"""The schema of ``state.db``: table creation and versioned migrations.

Schema changes are appended to ``MIGRATIONS``; ``PRAGMA user_version`` says how many ran. Each
migration runs in its own transaction together with its version bump.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import BadInput

if TYPE_CHECKING:
    import sqlite_utils


def _m1(db: sqlite_utils.Database) -> None:
    db["releases"].create(
        {
            "id": str,
            "name": str,
            "label": str,
            "created": str,
            "parent": str,
            "images": str,
            "bytes": int,
            "files": int,
            "packages": int,
            "signed_by": str,
            "seen_at": str,
        },
        pk="id",
    )
    db["releases"].create_index(["name"])
    db["releases"].create_index(["created"])
    db["file_cache"].create({"path": str, "size": int, "mtime_ns": int, "inode": int, "digest": str}, pk="path")
    db["channel_events"].create(
        {
            "id": int,
            "channel": str,
            "version": int,
            "release": str,
            "previous": str,
            "action": str,
            "reason": str,
            "actor": str,
            "issued": str,
            "expires": str,
            "recorded_at": str,
        },
        pk="id",
    )
    db["channel_events"].create_index(["channel", "version"], unique=True)
    db["channel_marks"].create({"channel": str, "version": int, "pointer_digest": str, "updated": str}, pk="channel")
    db["audit"].create(
        {"id": int, "time": str, "actor": str, "verb": str, "target": str, "outcome": str, "detail": str}, pk="id"
    )
    db["audit"].create_index(["time"])
    db["nodes"].create(
        {
            "name": str,
            "arch": str,
            "vendor": str,
            "cpus": int,
            "memory": int,
            "os": str,
            "flags_digest": str,
            "channels": str,
            "images": str,
            "status": str,
            "detail": str,
            "last_seen": str,
            "probe": str,
        },
        pk="name",
    )
    db["nodes"].create_index(["arch"])
    db["builds"].create(
        {
            "id": int,
            "status": str,
            "builder": str,
            "source": str,
            "targets": str,
            "options": str,
            "created": str,
            "started": str,
            "finished": str,
            "release": str,
            "log_path": str,
            "pid": int,
            "error": str,
            "actor": str,
        },
        pk="id",
    )
    db["smoke_runs"].create(
        {
            "id": int,
            "node": str,
            "release": str,
            "image": str,
            "ok": int,
            "wall_s": float,
            "baseline_s": float,
            "reduction": float,
            "exit_code": int,
            "fingerprint": str,
            "time": str,
            "detail": str,
        },
        pk="id",
    )
    db["smoke_runs"].create_index(["node", "time"])


def _m2_build_plan(db: sqlite_utils.Database) -> None:
    """Builds: what happens after the images are built (release name/label, publish, channel) and
    which step a running build is in (``building``, ``publishing``, ``promoting``), so a cancel can
    refuse to interrupt a publish."""
    for column, kind in (("name", str), ("label", str), ("publish", int), ("channel", str), ("step", str)):
        db["builds"].add_column(column, kind)
    db["builds"].create_index(["status"])


def _m3_slurm(db: sqlite_utils.Database) -> None:
    """Slurm (issue 15). Nodes: what Slurm says of each (state, features, partitions, reason, CPUs,
    memory, when it was read: ``nodes --refresh-from slurm``). Builds: the executor (``local`` or
    ``slurm``) and, for Slurm, one entry per target: its job id and state (``jobs``, JSON)."""
    for column, kind in (
        ("slurm_state", str),
        ("slurm_features", str),
        ("slurm_partitions", str),
        ("slurm_reason", str),
        ("slurm_cpus", int),
        ("slurm_memory", int),
        ("slurm_seen", str),
    ):
        db["nodes"].add_column(column, kind)
    db["builds"].add_column("executor", str)
    db["builds"].add_column("jobs", str)


def _m4_rollout(db: sqlite_utils.Database) -> None:
    """Gated, staged rollout (issue 16). Smoke runs: how many cache files the runtime rejected
    (``rejected``; the policy check ``no-rejected-caches``). Rollouts: one row per staged rollout of a
    release on a channel (stages as JSON, the stage reached, its state); the signed stage pointers in
    the store are the truth nodes follow, this row is the console's plan and record."""
    db["smoke_runs"].add_column("rejected", int)
    db["smoke_runs"].create_index(["release"])
    db["rollouts"].create(
        {
            "id": int,
            "channel": str,
            "release": str,
            "base": str,
            "stages": str,
            "stage": int,
            "state": str,
            "started": str,
            "updated": str,
            "actor": str,
            "detail": str,
        },
        pk="id",
    )
    db["rollouts"].create_index(["channel", "state"])


def _m5_build_override(db: sqlite_utils.Database) -> None:
    """Builds: the ``--override REASON`` of ``build --promote C`` (issue 16): the promote at the end
    of the build goes through the channel's policy like ``console promote``, and this waives what
    the policy lets it waive."""
    db["builds"].add_column("override", str)


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _m1,
    _m2_build_plan,
    _m3_slurm,
    _m4_rollout,
    _m5_build_override,
]

#: Every table the migrations create (checked at each open without running them; a test keeps
#: it equal to what ``MIGRATIONS`` make).
TABLES = frozenset(
    {
        "releases",
        "file_cache",
        "channel_events",
        "channel_marks",
        "audit",
        "nodes",
        "builds",
        "smoke_runs",
        "rollouts",
    }
)


def schema_version(db: sqlite_utils.Database) -> int:
    """How many migrations have run on ``db`` (``PRAGMA user_version``)."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite_utils.Database, path: Path) -> None:
    """Run pending migrations, each in its own transaction with the version bump.

    BadInput when the database was written by a newer console (more migrations than known here).
    """
    while (v := schema_version(db)) < len(MIGRATIONS):
        if v < 0 or v > len(MIGRATIONS):
            raise BadInput(f"{path}: schema version {v} is newer than this console")
        with db.conn:
            db.execute("BEGIN IMMEDIATE")
            if schema_version(db) != v:  # another process migrated meanwhile
                continue
            MIGRATIONS[v](db)
            db.execute(f"PRAGMA user_version = {v + 1}")
    if schema_version(db) > len(MIGRATIONS):
        raise BadInput(f"{path}: schema version {schema_version(db)} is newer than this console")
