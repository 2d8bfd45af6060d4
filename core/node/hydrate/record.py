"""Step 6 of a hydrate: after the switch, ``state.json`` learns of it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from core.node.root import NodeRoot

if TYPE_CHECKING:
    from core.trust.pointers import Pointer


def record(
    node: NodeRoot, channel: str, release_id: str, arch: str, root: str, ptr: Pointer | None, now: datetime
) -> None:
    """After the switch: raise the channel's high-water mark and append to the switch history."""
    from core.clock import format_time

    state = node.load_state()
    when = format_time(now)
    if ptr is not None:
        mark = state["marks"].get(channel)
        if mark is None or ptr.version >= mark["version"]:
            state["marks"][channel] = {
                "version": ptr.version,
                "digest": ptr.digest,
                "release": ptr.release,
                "updated": when,
            }
    last = next((h for h in reversed(state["history"]) if h.get("channel") == channel), None)
    if last is None or (last["release"], last["arch"], last.get("version")) != (
        release_id,
        arch,
        ptr.version if ptr else None,
    ):
        state["history"].append(
            {
                "time": when,
                "channel": channel,
                "release": release_id,
                "arch": arch,
                "root": root,
                "version": ptr.version if ptr else None,
                "pinned": ptr is None,
            }
        )
    node.save_state(state)
