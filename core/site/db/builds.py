"""``builds``: one row per build job (status, plan, worker pid, result)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.site.db.base import Table


class Builds(Table):
    """Rows: id, status, builder, source, targets (JSON), options (JSON), created, started, finished,
    release, log_path, pid, error, actor, name, label, publish, channel, step. Decoding is the
    caller's (``core.build.jobs``)."""

    def insert(self, row: dict[str, Any]) -> int:
        """Insert a new build row; return its id."""
        return int(self.db["builds"].insert(row).last_pk)

    def upsert_all(self, rows: list[dict[str, Any]]) -> None:
        """Insert or replace whole rows keyed by id (the demo's past builds)."""
        self.db["builds"].upsert_all(rows, pk="id")

    def get(self, build_id: int) -> dict[str, Any] | None:
        """The raw row of ``build_id``, or None."""
        rows = self._dicts("select * from builds where id = ?", [build_id])
        return rows[0] if rows else None

    def update(self, build_id: int, values: dict[str, Any], *, when_status: Sequence[str] = ()) -> bool:
        """Set ``values`` on the row; with ``when_status`` only if its status is one of them.
        True if the row changed (a conditional update that lost its race changes nothing)."""
        sets = ", ".join(f"{k} = ?" for k in values)
        sql, params = f"update builds set {sets} where id = ?", [*values.values(), build_id]
        if when_status:
            sql += f" and status in ({', '.join('?' for _ in when_status)})"
            params += list(when_status)
        return self.db.execute(sql, params).rowcount > 0

    def rows(self, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Raw rows (of ``status`` only, if given), newest first, at most ``limit``."""
        sql, params = "select * from builds", []
        if status:
            sql += " where status = ?"
            params.append(status)
        sql += " order by id desc"
        if limit is not None:
            sql += f" limit {int(limit)}"
        return self._dicts(sql, params)
