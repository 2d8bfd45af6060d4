"""Time as the console and the nodes write it: UTC, ISO 8601 with ``Z``, and one injectable clock.

Kept apart from ``core.site.site`` so that node-side code (hydrate, channel pointer checks) can read the
clock without importing the site's SQLite layer.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from core.errors import BadInput

CLOCK_ENV = "DEPOT_CONSOLE_NOW"


def system_clock() -> datetime:
    """Now, in UTC; ``$DEPOT_CONSOLE_NOW`` (ISO 8601) pins it, so tests inject time instead of sleeping."""
    pinned = os.environ.get(CLOCK_ENV)
    if pinned:
        return parse_time(pinned)
    return datetime.now(UTC)


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 UTC timestamp as written by the console (``…Z``)."""
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise BadInput(f"invalid timestamp {text!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def format_time(dt: datetime) -> str:
    """``dt`` in UTC as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["CLOCK_ENV", "system_clock", "parse_time", "format_time"]
