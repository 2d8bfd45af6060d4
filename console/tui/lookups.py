"""Small database reads several screens share: what each channel carries, as this console last
accepted it (its marks), without reading the store. Kept here so that no screen imports another
screen's helpers, and so the data layer has one place to replace them from."""

from __future__ import annotations

from typing import Any


def current_channels(site: Any) -> dict[str, tuple[str, int]]:
    """channel -> (release id, version) as last accepted by this console (database, no store read)."""
    rows = site.state.db.execute(
        "select m.channel, e.release, m.version from channel_marks m join channel_events e "
        "on e.channel = m.channel and e.version = m.version"
    )
    return {r[0]: (r[1], r[2]) for r in rows}


def channels_by_release(site: Any) -> dict[str, list[str]]:
    """release id -> the channels that carry it (names sorted)."""
    out: dict[str, list[str]] = {}
    for ch, (rid, _) in sorted(current_channels(site).items()):
        out.setdefault(rid, []).append(ch)
    return out
