"""``rollouts``: one row per staged rollout of a release on a channel (issue 16, ``core.site.rollout``)."""

from __future__ import annotations

from typing import Any

from core.site.db.base import Table

_COLUMNS = ("channel", "release", "base", "stages", "stage", "state", "started", "updated", "actor", "detail")


class Rollouts(Table):
    """Rows: id, channel, release, base (the release the channel carried), stages (JSON list), stage
    (index reached), state (``running``, ``done``, ``aborted``), started, updated, actor, detail."""

    def insert(self, row: dict[str, Any]) -> int:
        """Insert a rollout (keys of ``_COLUMNS``); its id."""
        with self._transaction("IMMEDIATE"):
            cur = self.db.execute(
                f"insert into rollouts ({', '.join(_COLUMNS)}) values ({', '.join('?' for _ in _COLUMNS)})",
                [row.get(c) for c in _COLUMNS],
            )
            return int(cur.lastrowid or 0)

    def update(self, rollout_id: int, **values: Any) -> None:
        """Set some columns of one rollout."""
        cols = [c for c in values if c in _COLUMNS]
        with self._transaction("IMMEDIATE"):
            self.db.execute(
                f"update rollouts set {', '.join(f'{c} = ?' for c in cols)} where id = ?",
                [*(values[c] for c in cols), rollout_id],
            )

    def running(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Rollouts still running (of ``channel`` only, if given), oldest first."""
        where, params = ("and channel = ?", [channel]) if channel else ("", [])
        return self._dicts(f"select * from rollouts where state = 'running' {where} order by id", params)

    def latest(self, channel: str | None = None) -> list[dict[str, Any]]:
        """The newest rollout of each channel (of ``channel`` only, if given), by channel."""
        where, params = ("where channel = ?", [channel]) if channel else ("", [])
        return self._dicts(
            f"select * from rollouts where id in (select max(id) from rollouts {where} group by channel) "
            "order by channel",
            params,
        )
