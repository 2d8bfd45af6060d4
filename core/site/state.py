"""The operator's local database: SQLite through sqlite-utils, WAL mode, versioned migrations.

The store stays the truth for releases and channels; this file is the local view (catalogue cache,
high-water marks, inventory) and the record of operations (channel events, builds, smoke runs,
audit). Schema changes are appended to ``MIGRATIONS``; ``PRAGMA user_version`` says how many ran.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from core.errors import BadInput


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


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_m1, _m2_build_plan]


def utcnow_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class State:
    """A handle on ``state.db``; every method is a short transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA busy_timeout = 30000")
            if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self.db.enable_wal()
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.migrate()
        except sqlite3.DatabaseError as exc:
            raise BadInput(f"{path}: not a usable state database ({exc})") from None

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> None:
        """Run pending migrations, each in its own transaction with the version bump."""
        while (v := self.schema_version) < len(MIGRATIONS):
            if v < 0 or v > len(MIGRATIONS):
                raise BadInput(f"{self.path}: schema version {v} is newer than this console")
            with self.db.conn:
                self.db.execute("BEGIN IMMEDIATE")
                if self.schema_version != v:  # another process migrated meanwhile
                    continue
                MIGRATIONS[v](self.db)
                self.db.execute(f"PRAGMA user_version = {v + 1}")
        if self.schema_version > len(MIGRATIONS):
            raise BadInput(f"{self.path}: schema version {self.schema_version} is newer than this console")

    def close(self) -> None:
        self.db.conn.close()

    # -- audit -----------------------------------------------------------------------------
    def audit(
        self, actor: str, verb: str, target: str, outcome: str, detail: Any = None, time: str | None = None
    ) -> None:
        self.db["audit"].insert(
            {
                "time": time or utcnow_iso(),
                "actor": actor,
                "verb": verb,
                "target": target,
                "outcome": outcome,
                "detail": json.dumps(detail) if detail is not None else "",
            }
        )

    def audit_rows(self, limit: int = 200, search: str = "") -> list[dict]:
        where, params = "", []
        if search:
            where = "where actor like ? or verb like ? or target like ? or outcome like ?"
            params = [f"%{search}%"] * 4
        return list(self.db.query(f"select * from audit {where} order by id desc limit ?", [*params, limit]))

    # -- file hash cache (publish) -----------------------------------------------------------
    def cached_digests(self, prefix: str) -> dict[str, tuple[int, int, int, str]]:
        """path -> (size, mtime_ns, inode, digest) for every cached path under ``prefix``."""
        rows = self.db.execute(
            "select path, size, mtime_ns, inode, digest from file_cache where path >= ? and path < ?",
            [prefix, prefix + "\U0010ffff"],
        )
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

    def store_digests(self, rows: Iterable[tuple[str, int, int, int, str]]) -> None:
        with self.db.conn:
            self.db.execute("BEGIN")
            self.db.conn.executemany(
                "insert or replace into file_cache(path, size, mtime_ns, inode, digest) values (?,?,?,?,?)", rows
            )

    # -- releases catalogue cache ------------------------------------------------------------
    def known_release_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("select id from releases")}

    def upsert_releases(self, rows: list[dict]) -> None:
        if rows:
            self.db["releases"].upsert_all(rows, pk="id")

    def delete_releases(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if ids:
            with self.db.conn:
                self.db.execute("BEGIN")
                self.db.conn.executemany("delete from releases where id = ?", [(i,) for i in ids])

    def release_rows(
        self, name: str | None = None, limit: int | None = None, offset: int = 0, search: str = ""
    ) -> list[dict]:
        clauses, params = [], []
        if name:
            clauses.append("name = ?")
            params.append(name)
        if search:
            clauses.append("(name like ? or label like ? or id like ? or images like ?)")
            params += [f"%{search}%", f"%{search}%", f"sha256:{search}%", f"%{search}%"]
        where = ("where " + " and ".join(clauses)) if clauses else ""
        lim = f"limit {int(limit)} offset {int(offset)}" if limit is not None else ""
        return list(self.db.query(f"select * from releases {where} order by created desc, id {lim}", params))

    def release_ids_with_prefix(self, hexprefix: str) -> list[str]:
        like = "sha256:" + hexprefix + "%"
        return [r[0] for r in self.db.execute("select id from releases where id like ? order by id", [like])]
