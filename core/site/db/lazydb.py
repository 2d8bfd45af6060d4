"""``state.db``'s handle without importing sqlite-utils until a table method needs it.

sqlite-utils costs ~60 ms to import (more on a loaded machine), paid by every verb that opens the
site, while the read paths scripts call in loops (``show``, ``diff``, ``releases``, ``channels``)
only run ``execute`` and ``query`` on the connection. ``LazyDatabase`` answers those itself,
with the semantics of ``sqlite_utils.Database`` (same rollback of a failed implicit transaction,
same commit of a write outside a transaction, same ``PRAGMA recursive_triggers=on`` at open), and
builds the real ``sqlite_utils.Database`` on the same connection the first time anything else is
asked of it (``db["table"].insert``, migrations, ``create``...).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

from core.optional import hidden_modules


def import_sqlite_utils() -> ModuleType:
    """``sqlite_utils``, imported without numpy or pandas (``core.optional``: it imports them for
    column types of their values whenever they are installed; ~60 ms, and OpenBLAS threads)."""
    with hidden_modules("numpy", "pandas"):
        import sqlite_utils  # noqa: PLC0415 - the point of this module

    return sqlite_utils


_TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"}


def _first_keyword(sql: str) -> str:
    words = sql.lstrip().split(None, 1)
    return words[0].rstrip(";").upper() if words else ""


class LazyDatabase:
    """The subset of ``sqlite_utils.Database`` the read paths use, then the real one."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._real: Any = None
        self.execute("PRAGMA recursive_triggers=on;")

    def _database(self) -> Any:
        if self._real is None:
            self._real = import_sqlite_utils().Database(self.conn)
        return self._real

    def execute(self, sql: str, parameters: Sequence | dict[str, Any] | None = None) -> sqlite3.Cursor:
        if self._real is not None:
            return self._real.execute(sql, parameters)
        was_in_transaction = self.conn.in_transaction
        try:
            cursor = self.conn.execute(sql, parameters) if parameters is not None else self.conn.execute(sql)
        except Exception:
            if not was_in_transaction and self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        if (
            not was_in_transaction
            and self.conn.in_transaction
            and cursor.description is None
            and _first_keyword(sql) not in _TRANSACTION_CONTROL
        ):
            self.conn.execute("COMMIT")
        return cursor

    def query(self, sql: str, params: Sequence | dict[str, Any] | None = None) -> Iterator[dict]:
        if self._real is not None or _first_keyword(sql) not in ("SELECT", "WITH"):
            return self._database().query(sql, params)
        cursor = self.execute(sql, params)
        keys = [d[0] for d in cursor.description]
        return (dict(zip(keys, row)) for row in cursor)

    def enable_wal(self) -> None:
        if self.execute("PRAGMA journal_mode;").fetchone()[0] != "wal":
            self._database().enable_wal()

    def __getitem__(self, name: str) -> Any:
        return self._database()[name]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._database(), name)
