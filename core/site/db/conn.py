"""The connection to ``state.db``: SQLite's failures turned into the console's one-line errors.

Every statement of the table classes runs through `Connection` (a ``sqlite3.Connection`` made by
``sqlite3.connect(factory=…)``), which turns the three failures an operator can meet into
`core.errors` types that still *are* ``sqlite3.OperationalError`` (sqlite-utils catches that class
in places and must keep working):

* locked past the busy timeout -> `Locked` (``StateLocked``, exit 3): another console holds it;
* disk full -> `Full` (``StateFull``, exit 1);
* a table gone (``no such table``) -> `Damaged` (``StateDamaged``, exit 2), naming the recovery.

After the first ``Locked`` the busy timeout drops to zero for the rest of the process, so one
command waits for a held database once, not once per write (``State.locked``).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Any

from core.errors import StateDamaged, StateFull, StateLocked


class Locked(StateLocked, sqlite3.OperationalError):
    """``state.db`` is locked by another process."""


class Full(StateFull, sqlite3.OperationalError):
    """``state.db`` could not grow."""


class Damaged(StateDamaged, sqlite3.OperationalError):
    """A table of ``state.db`` is missing."""


def translate(exc: sqlite3.Error, conn: Connection) -> Exception:
    """The console error for ``exc``, or ``exc`` itself when it is none of the known three."""
    text = str(exc)
    path = conn.path
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        waited = conn.busy_timeout_s
        conn.locked = True
        with contextlib.suppress(sqlite3.Error):
            sqlite3.Connection.execute(conn, "PRAGMA busy_timeout = 0")
            conn.busy_timeout_s = 0
        return Locked(f"{path} is locked by another process (waited {waited:g} s)")
    if "database or disk is full" in text:
        return Full(f"disk full writing {path}: no space left on the device; free space and run again")
    if text.startswith("no such table"):
        table = text.split(":", 1)[-1].strip()
        return Damaged(
            f"{path} is damaged: table {table} is missing; run the command again and the console "
            "recreates it (releases and channels are rebuilt from the store, the rows of other tables are lost)"
        )
    return exc


class Cursor(sqlite3.Cursor):
    def execute(self, *args: Any) -> Cursor:
        with _translated(self.connection):  # type: ignore[arg-type]
            return super().execute(*args)

    def executemany(self, *args: Any) -> Cursor:
        with _translated(self.connection):  # type: ignore[arg-type]
            return super().executemany(*args)


class Connection(sqlite3.Connection):
    """A connection whose failures are `translate`d (module docstring)."""

    path: str = "state.db"
    busy_timeout_s: float = 0.0
    locked: bool = False

    def cursor(self, factory: Any = Cursor) -> Any:
        return super().cursor(factory)

    def execute(self, *args: Any) -> Any:
        return self.cursor().execute(*args)

    def executemany(self, *args: Any) -> Any:
        return self.cursor().executemany(*args)

    def executescript(self, *args: Any) -> Any:
        with _translated(self):
            return super().executescript(*args)

    def commit(self) -> None:
        with _translated(self):
            super().commit()

    def __exit__(self, *exc: Any) -> Any:
        with _translated(self):
            return super().__exit__(*exc)


@contextlib.contextmanager
def _translated(conn: Connection) -> Iterator[None]:
    try:
        yield
    except (Locked, Full, Damaged):
        raise
    except sqlite3.Error as exc:
        new = translate(exc, conn)
        if new is exc:
            raise
        raise new from None
