"""The operator's local database, ``state.db``: the only place in the code base where SQL runs.

SQLite through sqlite-utils, WAL mode, versioned migrations (`schema`). The store stays the truth
for releases and channels; this database is the local view (catalogue cache, high-water marks,
inventory) and the record of operations (channel events, builds, smoke runs, audit).

One class per table, each the only code that writes SQL for its table; `State` opens the file
and holds one of each::

    state.releases        Releases        catalogue cache
    state.file_cache      FileCache       publish's hash cache
    state.audit_log       AuditLog        who did what
    state.channel_marks   ChannelMarks    high-water mark per channel
    state.channel_events  ChannelEvents   every pointer issued or verified
    state.nodes           Nodes           the inventory
    state.smoke_runs      SmokeRuns       smoke results
    state.builds          Builds          build jobs
    state.rollouts        Rollouts        staged rollouts

Nothing outside ``core/site/db/`` imports sqlite3 or sqlite_utils or writes SQL
(``tests/unit/test_sql_layer.py`` fails if something does).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from core.errors import BadInput, LocalStateError
from core.site.db.base import Where, utcnow_iso
from core.site.db.conn import Connection
from core.site.db.lazydb import LazyDatabase, import_sqlite_utils
from core.site.db.schema import MIGRATIONS, TABLES, migrate, schema_version

if TYPE_CHECKING:
    import sqlite_utils

    from core.site.db.audit import AuditLog
    from core.site.db.builds import Builds
    from core.site.db.channels import ChannelEvents, ChannelMarks
    from core.site.db.file_cache import FileCache
    from core.site.db.nodes import Nodes, SmokeRuns
    from core.site.db.releases import Releases
    from core.site.db.rollouts import Rollouts

#: Each table's query class and its module: imported when a command first touches the table
#: (``State``'s properties, or ``from core.site.db import Nodes``), so a verb that reads releases
#: does not load the builds, rollouts and fleet tables' code.
_TABLE_CLASSES = {
    "AuditLog": "audit",
    "Builds": "builds",
    "ChannelEvents": "channels",
    "ChannelMarks": "channels",
    "FileCache": "file_cache",
    "Nodes": "nodes",
    "SmokeRuns": "nodes",
    "Releases": "releases",
    "Rollouts": "rollouts",
}


def __getattr__(name: str) -> Any:
    if name not in _TABLE_CLASSES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_TABLE_CLASSES[name]}"), name)


def _table(cls_name: str, doc: str) -> Any:
    """A ``State`` attribute holding one table's query object, made on first use."""

    def get(self: State) -> Any:
        return __getattr__(cls_name)(self.db)

    get.__doc__ = doc
    return functools.cached_property(get)


#: Seconds a write waits for another process's lock on ``state.db`` (``[site] busy_timeout_s``).
DEFAULT_BUSY_TIMEOUT_S = 10.0

__all__ = [
    "MIGRATIONS",
    "AuditLog",
    "Builds",
    "ChannelEvents",
    "ChannelMarks",
    "FileCache",
    "Nodes",
    "Releases",
    "Rollouts",
    "SmokeRuns",
    "State",
    "Where",
    "utcnow_iso",
]


class State:
    """A handle on ``state.db``: one query object per table; every method is a short transaction."""

    def __init__(self, path: Path, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        self.path = path
        #: Warnings for the operator from opening the file (a table recreated), one line each.
        self.notes: list[str] = []
        #: Tables recreated empty at open (their rows were lost; the store-backed ones are rebuilt).
        self.recreated: list[str] = []
        try:
            conn = sqlite3.connect(
                str(path), timeout=busy_timeout_s, check_same_thread=False, isolation_level=None, factory=Connection
            )
            conn.path, conn.busy_timeout_s = str(path), busy_timeout_s
            self.conn = conn
            self.db = cast("sqlite_utils.Database", LazyDatabase(conn))  # sqlite-utils imported on first need
            self.db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self.db.enable_wal()
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.migrate()
            self.recreate_missing_tables()
        except LocalStateError:
            raise
        except sqlite3.DatabaseError as exc:
            raise BadInput(f"{path}: not a usable state database ({exc})") from None

    releases: Releases = _table("Releases", "the release catalogue")
    file_cache: FileCache = _table("FileCache", "publish's (path, size, mtime, inode) -> digest cache")
    audit_log: AuditLog = _table("AuditLog", "who did what, when")
    channel_marks: ChannelMarks = _table("ChannelMarks", "each channel's accepted pointer version")
    channel_events: ChannelEvents = _table("ChannelEvents", "every pointer version seen")
    nodes: Nodes = _table("Nodes", "the node inventory")
    smoke_runs: SmokeRuns = _table("SmokeRuns", "smoke test results per node")
    builds: Builds = _table("Builds", "build jobs")
    rollouts: Rollouts = _table("Rollouts", "staged rollouts")

    @property
    def schema_version(self) -> int:
        """How many migrations have run (``PRAGMA user_version``)."""
        return schema_version(self.db)

    def migrate(self) -> None:
        """Run pending migrations, each in its own transaction with the version bump."""
        migrate(self.db, self.path)

    @property
    def locked(self) -> bool:
        """True once a write of this process found the database locked past the busy timeout."""
        return self.conn.locked

    def recreate_missing_tables(self) -> None:
        """Recreate (empty) any table the migrations made that is gone, with its indexes.

        The schema of a missing table is taken from a scratch in-memory database migrated the same
        way, so it is exactly what the migrations would have left. Each one adds a line to ``notes``.
        """
        have = {r[0] for r in self.db.execute("select name from sqlite_master where type = 'table'")}
        if TABLES <= have:
            return
        scratch = import_sqlite_utils().Database(memory=True)
        for m in MIGRATIONS:
            m(scratch)
        ddl = scratch.execute("select tbl_name, type, sql from sqlite_master where sql is not null").fetchall()
        missing = sorted({t for t, kind, _ in ddl if kind == "table" and t not in have})
        if not missing:
            return
        with self.db.conn:
            self.db.execute("BEGIN IMMEDIATE")
            for table, _kind, sql in sorted(ddl, key=lambda r: r[1] != "table"):
                if table in missing:
                    self.db.execute(sql)
        self.recreated = missing
        self.notes.append(
            f"{self.path} had lost table(s) {', '.join(missing)}; recreated them empty "
            "(releases and channel records are rebuilt from the store, the rows of other tables are lost)"
        )

    def close(self) -> None:
        """Close the connection."""
        self.db.conn.close()

    # -- short names kept for the callers of the single-class State ---------------------------
    def audit(
        self, actor: str, verb: str, target: str, outcome: str, detail: Any = None, time: str | None = None
    ) -> None:
        """`AuditLog.insert`."""
        self.audit_log.insert(actor, verb, target, outcome, detail, time)

    def audit_rows(self, limit: int = 200, search: str = "") -> list[dict]:
        """`AuditLog.rows`."""
        return self.audit_log.rows(limit, search)

    def cached_digests(self, prefix: str) -> dict[str, tuple[int, int, int, str]]:
        """`FileCache.under`: path -> (size, mtime_ns, inode, digest) under ``prefix``."""
        return self.file_cache.under(prefix)

    def store_digests(self, rows: Iterable[tuple[str, int, int, int, str]]) -> None:
        """`FileCache.store`."""
        self.file_cache.store(rows)

    def known_release_ids(self) -> set[str]:
        """`Releases.known_ids`."""
        return self.releases.known_ids()

    def upsert_releases(self, rows: list[dict]) -> None:
        """`Releases.upsert`."""
        self.releases.upsert(rows)

    def delete_releases(self, ids: Iterable[str]) -> None:
        """`Releases.delete`."""
        self.releases.delete(ids)

    def release_rows(
        self, name: str | None = None, limit: int | None = None, offset: int = 0, search: str = ""
    ) -> list[dict]:
        """`Releases.rows`."""
        return self.releases.rows(name, limit, offset, search)

    def release_ids_with_prefix(self, hexprefix: str) -> list[str]:
        """`Releases.ids_with_prefix`."""
        return self.releases.ids_with_prefix(hexprefix)
