"""When ``state.db`` cannot take a write: defer the local record, tell the operator, catch up later.

The store is the truth for releases and channels; the database is the operator's local view and
the record of operations (DESIGN §7). So a store change that succeeded stands even when the
database then refuses the write (locked by another process past ``[site] busy_timeout_s``, or the
disk full): the verb reports what actually happened, with one warning line that the local record
is behind, and what could not be written is appended to ``state.pending.jsonl`` beside it:

* ``{"kind": "audit", "row": {...}}``: an audit row, written later with its original time and a
  ``deferred`` note in its detail (failed operations too: their ``error: …`` row is not lost);
* ``{"kind": "channel", "channel": C}``: channel C's marks and events are behind; they are rebuilt
  from the store's pointer history (every verified history file an event, the current pointer
  the mark).

`catch_up` runs when the next command opens the site (any verb): it takes the file (rename, so
two consoles never replay one entry twice), replays it, and puts back what still cannot be
written. Tables lost from ``state.db`` (``DROP TABLE``) are recreated at open (``State``); the
store-backed ones (releases, channel marks and events) are then rebuilt here the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import TYPE_CHECKING, Any

from core.errors import DepotError, LocalStateError, TrustError

if TYPE_CHECKING:
    from core.site.site import Site

PENDING_NAME = "state.pending.jsonl"
_STORE_TABLES = ("channel_marks", "channel_events")


def defer(site: Site, entry: dict[str, Any], warning: str, *, specific: bool = False) -> None:
    """Append ``entry`` to the pending file and say so in ``site.warnings``: one line per command,
    the first one, or a ``specific`` one (what a changed store now holds) in its place."""
    try:
        fd = os.open(site.root / PENDING_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
    except OSError as exc:
        warning += f" (and {PENDING_NAME} could not be written either: {exc.strerror})"
    if site.deferred is None:
        site.deferred = len(site.warnings)
        site.warnings.append(warning)
    elif specific and site.deferred < len(site.warnings):
        site.warnings[site.deferred] = warning


def defer_channel(site: Site, channel: str, exc: LocalStateError, what: str = "") -> None:
    """Channel ``channel``'s local record (mark, events) is behind the store."""
    said = what or f"{channel}'s local record is behind the store"
    defer(
        site,
        {"kind": "channel", "channel": channel},
        f"warning: {exc}: {said}; the next command catches it up",
        specific=bool(what),
    )


def defer_audit(site: Site, row: dict[str, Any], exc: LocalStateError) -> None:
    row = dict(row, detail={"deferred": str(exc), **(row["detail"] if isinstance(row["detail"], dict) else {})})
    defer(
        site,
        {"kind": "audit", "row": row},
        f"warning: {exc}: the audit row of '{row['verb']} {row['target']}' is deferred; the next command writes it",
    )


def pending(site: Site) -> bool:
    return (site.root / PENDING_NAME).exists() or any(t in site.state.recreated for t in (*_STORE_TABLES, "releases"))


def _take(site: Site) -> list[dict[str, Any]]:
    path = site.root / PENDING_NAME
    mine = path.with_name(f".{PENDING_NAME}.{os.getpid()}")
    try:
        os.rename(path, mine)
    except FileNotFoundError:
        return []
    try:
        lines = mine.read_text().splitlines()
    finally:
        mine.unlink()
    out = []
    for line in lines:
        with contextlib.suppress(ValueError):
            doc = json.loads(line)
            if isinstance(doc, dict):
                out.append(doc)
    return out


def reconcile_channel(site: Site, channel: str) -> None:
    """Rebuild ``channel``'s events and mark from the store (history files, then the current pointer)."""
    from core.site import channels

    channels.read_history(site, channel)
    channels.read_current(site, channel, None)


def catch_up(site: Site) -> None:
    """Replay the pending file and rebuild recreated store-backed tables (module docstring).

    Never fails the command that triggered it: what cannot be done now stays pending.
    """
    entries = _take(site)
    left: list[dict[str, Any]] = []
    chans: list[str] = []
    for e in entries:
        if e.get("kind") == "audit" and isinstance(e.get("row"), dict):
            try:
                site.state.audit(**e["row"])
            except LocalStateError:
                left.append(e)
            except TypeError:
                pass
        elif e.get("kind") == "channel" and isinstance(e.get("channel"), str) and e["channel"] not in chans:
            chans.append(e["channel"])
    try:
        if any(t in site.state.recreated for t in _STORE_TABLES):
            chans += [c for c in site.store.list_channels() if c not in chans]
        if "releases" in site.state.recreated:
            from core.site.catalogue import sync_catalogue

            sync_catalogue(site)
    except DepotError:
        pass
    for ch in chans:
        try:
            reconcile_channel(site, ch)
        except TrustError:
            pass  # nothing trustworthy to catch up to; `channels` shows the problem
        except DepotError:
            left.append({"kind": "channel", "channel": ch})
    site.state.recreated = []
    for e in left:
        with contextlib.suppress(OSError):
            fd = os.open(site.root / PENDING_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a") as f:
                f.write(json.dumps(e, sort_keys=True) + "\n")
