"""Human output helpers shared by the CLI verbs: tables, sizes, relative times.

Everything here formats; nothing decides. JSON output bypasses this module entirely.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

import humanize


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
    now = now or datetime.now(timezone.utc)
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
