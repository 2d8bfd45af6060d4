"""Reads several screens share. What each channel carries comes from ``core.site.channels.carried``,
the function behind ``console channels``, so the TUI and the CLI give one answer. Kept here so
that no screen imports another screen's helpers."""

from __future__ import annotations

from typing import Any

from core.errors import DepotError
from core.site.channels import carried


def current_channels(site: Any, rows: list[dict] | None = None) -> dict[str, tuple[str, int]]:
    """channel -> (release id, version) of each channel's verified current pointer (`carried`);
    empty when the store cannot be read (``console channels`` fails then too).
    ``rows``: the result of a ``channel_status`` call already made."""
    try:
        return carried(site, rows)
    except DepotError:
        return {}


def channels_by_release(site: Any, rows: list[dict] | None = None) -> dict[str, list[str]]:
    """release id -> the channels that carry it (names sorted)."""
    out: dict[str, list[str]] = {}
    for ch, (rid, _) in sorted(current_channels(site, rows).items()):
        out.setdefault(rid, []).append(ch)
    return out


def release_labels(site: Any) -> dict[str, tuple[str, str]]:
    """release id -> (name, label) of every release in the catalogue cache."""
    return site.state.releases.labels()
