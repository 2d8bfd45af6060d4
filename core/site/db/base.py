"""What every table class shares: a handle on the connection and one way to write a filter.

A filter is written once, as a `Where`, and used by both the count and the page query of a
table, so "how many match" and "which ones" can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.clock import format_time, system_clock

if TYPE_CHECKING:
    import sqlite_utils


def utcnow_iso() -> str:
    """Now, UTC, to the second, as stored in the database (``2026-11-21T12:00:00Z``): the
    console's one clock (``core.clock``, which ``$DEPOT_CONSOLE_NOW`` pins), never the bare system time."""
    return format_time(system_clock())


@dataclass(frozen=True)
class Where:
    """A ``where`` clause: conditions joined by ``and``, with their ``?`` parameters in order."""

    clauses: tuple[str, ...] = ()
    params: tuple[Any, ...] = ()

    def and_(self, clause: str, *params: Any) -> Where:
        """This filter and one more condition."""
        return Where((*self.clauses, clause), (*self.params, *params))

    @property
    def sql(self) -> str:
        """``where …`` or the empty string when there is no condition."""
        return ("where " + " and ".join(self.clauses)) if self.clauses else ""


def like_any(columns: Iterable[str], text: str) -> tuple[str, tuple[str, ...]]:
    """``(a like ? or b like ? …)`` matching ``text`` anywhere in any of ``columns``."""
    cols = list(columns)
    return "(" + " or ".join(f"{c} like ?" for c in cols) + ")", tuple(f"%{text}%" for _ in cols)


class Table:
    """One table of ``state.db``: the only code that writes SQL for it."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    @contextmanager
    def _transaction(self, mode: str = "") -> Iterator[None]:
        """One explicit transaction (``BEGIN`` or ``BEGIN IMMEDIATE``), committed on success."""
        with self.db.conn:
            self.db.execute(f"BEGIN {mode}".strip())
            yield

    def _dicts(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, list(params)))

    def _scalar(self, sql: str, params: Iterable[Any] = ()) -> Any:
        row = self.db.execute(sql, list(params)).fetchone()
        return row[0] if row else None
