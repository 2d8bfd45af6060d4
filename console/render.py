"""Human text both faces show: sizes, relative times, tables, and the one-line summaries of a
channel update or a build that the CLI prints and the TUI puts in its notifications.

Everything here formats; nothing decides. JSON output bypasses this module entirely. Every verb
imports it, so it imports nothing heavy (``core`` types only for annotations).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

import humanize

from core.model.digest import short as digest_short

if TYPE_CHECKING:
    from core.site.channels import ChannelUpdate


#: Characters a terminal acts on instead of showing: C0 and C1 controls, DEL, and the Unicode
#: format characters that reorder or hide text (bidi overrides and isolates, zero-width ones).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
_CONTROL_BUT_LAYOUT = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(value: object) -> str:
    """``value`` as one line a terminal only shows: every control character (newline and tab
    included) becomes a visible escape such as ``\\x1b``. For untrusted strings inside a line:
    release names, labels, reasons, node names, probe output."""
    return _CONTROL.sub(_escape, "" if value is None else str(value))


def inert_text(text: str) -> str:
    """``text`` with its lines and tabs kept and every other control character made visible, so
    no escape sequence reaches the terminal (a build log, a whole verb's output)."""
    return _CONTROL_BUT_LAYOUT.sub(_escape, text)


class InertStream:
    """A text stream that passes everything written through ``inert_text`` (the CLI wraps its
    stdout and stderr in one, so no verb can forget to)."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        self._inner.write(inert_text(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def size(n: int | float | None) -> str:
    """``1.2 GB``-style sizes (decimal units, like df -H and most operators' dashboards)."""
    if n is None:
        return "-"
    if abs(n) < 1000:  # humanize says "282 Bytes" / "1 Byte"; every other size here is "kB"-style
        return f"{int(n)} B"
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
    cells = [[str(h) for h in headers]] + [[inert(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for r in cells:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def short(digest: str | None, n: int = 12) -> str:
    """``core.model.digest.short``, with ``-`` for no digest at all."""
    return digest_short(digest, n) if digest else "-"


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


def warm_change(reduction: float | None) -> str:
    """The warm start against the cold one: ``28% faster warm``; a slower warm start reads as
    what it is, ``3% slower warm: a regression`` (never ``-3% faster``); ``""`` without a baseline."""
    if reduction is None:
        return ""
    pct = round(abs(reduction) * 100)
    if not pct:
        return "as fast as cold"
    return f"{pct}% faster warm" if reduction > 0 else f"{pct}% slower warm: a regression"


def smoke_cell(ok: bool | None, wall: float | None, reduction: float | None) -> tuple[str, str]:
    """(text, style) of a node's last smoke run in a narrow column: ``ok 1.2s -28%`` (start-up
    time 28% below cold), ``ok 1.2s +3% slower`` for a regression, ``FAIL 8s``, ``-``."""
    if ok is None:
        return "-", "dim"
    if not ok:
        return f"FAIL {wall or 0:.0f}s", "bold red"
    if wall is None:
        return "ok", "green"
    if reduction is None:
        return f"ok {wall:.1f}s", "green"
    pct = round(abs(reduction) * 100)
    if reduction < 0 and pct:
        return f"ok {wall:.1f}s +{pct}% slower", "bold yellow"
    return f"ok {wall:.1f}s -{pct}%", "green"


def published_in(rows: list[dict[str, Any]]) -> str:
    """``core.site.cvmfs.status.release_in_targets`` as one line: the targets holding the release,
    then those that do not and those that could not be read, e.g. ``a.org (not in b.org)``."""
    held = [r["target"] for r in rows if r["present"]]
    text = ", ".join(held) or "-"
    missing = [r["target"] for r in rows if r["present"] is False]
    unread = [r["target"] for r in rows if r["present"] is None]
    if missing:
        text += f" (not in {', '.join(missing)})"
    if unread:
        text += f" ({', '.join(unread)}: unreadable)"
    return text
