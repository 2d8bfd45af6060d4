"""Human text both faces show: sizes, relative times, tables, and the one-line summaries of a
channel update or a build that the CLI prints and the TUI puts in its notifications.

Everything here formats; nothing decides. JSON output bypasses this module entirely. Every verb
imports it, so it imports nothing heavy (``core`` types only for annotations).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import humanize

if TYPE_CHECKING:
    from core.site.channels import ChannelUpdate


def size(n: int | float | None) -> str:
    """``1.2 GB``-style sizes (decimal units, like df -H and most operators' dashboards)."""
    if n is None:
        return "-"
    return humanize.naturalsize(n, format="%.1f")


def ago(iso: str | None, now: datetime | None = None) -> str:
    """``3 hours ago`` for an ISO timestamp; ``-`` when missing or unparseable."""
    if not iso:
        return "-"
    try:
        dt = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    now = now or datetime.now(UTC)
    return humanize.naturaltime(now - dt)


def delta(n: int) -> str:
    """Signed byte delta: ``+1.2 MB`` / ``-3.0 kB`` / ``0``."""
    if n == 0:
        return "0"
    return ("+" if n > 0 else "-") + size(abs(n))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[int] = ()) -> str:
    """A plain aligned text table (no box drawing: survives logs, mail and grep)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for r in cells:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def short(digest: str | None, n: int = 12) -> str:
    if not digest:
        return "-"
    return digest.removeprefix("sha256:")[:n]


def time_left(seconds: int | None) -> str:
    """``29d 23h`` / ``5h 3m`` / ``12m`` / ``expired 40s ago``."""
    if seconds is None:
        return "-"
    s = abs(seconds)
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    text = f"{d}d {h}h" if d else (f"{h}h {m}m" if h else (f"{m}m" if m else f"{sec}s"))
    return text if seconds > 0 else f"expired {text} ago"


def channel_update_text(u: ChannelUpdate) -> str:
    """``production: promoted 653d5cfc1720 (version 5, was 3baaed010bdb; expires …)``, or why
    nothing changed."""
    p = u.pointer
    if not u.changed:
        return u.message
    verb = {"promote": "promoted", "rollback": "rolled back to", "refresh": "refreshed"}[p.action]
    was = f", was {short(p.previous)}" if p.previous and p.previous != p.release else ""
    return f"{p.channel}: {verb} {short(p.release)} (version {p.version}{was}; expires {p.expires})"


def build_summary(row: Mapping[str, Any]) -> str:
    """``build 7 succeeded: release sha256:…, production -> 653d5cfc1720`` (or its error)."""
    text = f"build {row['id']} {row['status']}"
    if row.get("release"):
        text += f": release {row['release']}"
        if row.get("channel") and row["status"] == "succeeded":
            text += f", {row['channel']} -> {short(row['release'])}"
    if row.get("error"):
        text += f": {row['error']}"
    return text
