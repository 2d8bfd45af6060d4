"""``channel_marks`` (the high-water mark per channel) and ``channel_events`` (every pointer seen)."""

from __future__ import annotations

from typing import Any

from core.site.db.base import Table


class ChannelMarks(Table):
    """One row per channel: the highest pointer version this console accepted and the digest of
    those exact bytes (replay protection, DESIGN §4)."""

    def get(self, channel: str) -> tuple[int | None, str | None]:
        """(version, pointer digest) of the mark, or (None, None) when the channel has none."""
        row = self.db.execute(
            "select version, pointer_digest from channel_marks where channel = ?", [channel]
        ).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def raise_to(self, channel: str, version: int, pointer_digest: str, updated: str) -> None:
        """Raise the mark to ``version`` (never lower it: racing readers may accept older versions late)."""
        with self.db.conn:
            self.db.execute(
                "insert into channel_marks(channel, version, pointer_digest, updated) values (?,?,?,?) "
                "on conflict(channel) do update set version = excluded.version, "
                "pointer_digest = excluded.pointer_digest, updated = excluded.updated "
                "where excluded.version > channel_marks.version",
                [channel, version, pointer_digest, updated],
            )

    def channels(self) -> list[str]:
        """Every channel that has a mark (in table order)."""
        return [r[0] for r in self.db.execute("select channel from channel_marks")]


_EVENT_COLUMNS = (
    "channel",
    "version",
    "release",
    "previous",
    "action",
    "reason",
    "actor",
    "issued",
    "expires",
    "recorded_at",
)


class ChannelEvents(Table):
    """One row per (channel, version) pointer the console issued or verified in a history."""

    def record(self, event: dict[str, Any]) -> None:
        """Insert an event (keys: channel, version, release, previous, action, reason, actor, issued,
        expires, recorded_at); a (channel, version) already recorded is left as it is."""
        with self.db.conn:
            self.db.execute(
                f"insert or ignore into channel_events({', '.join(_EVENT_COLUMNS)}) "
                f"values ({','.join('?' for _ in _EVENT_COLUMNS)})",
                [event[c] for c in _EVENT_COLUMNS],
            )

    def rows(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Recorded events of ``channel`` (all channels by default), by channel, newest version first."""
        where, params = ("where channel = ?", [channel]) if channel else ("", [])
        return self._dicts(f"select * from channel_events {where} order by channel, version desc", params)
