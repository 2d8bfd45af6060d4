"""Guards a face runs right before a state change that an operator confirmed against what it showed.

A dialog shows a channel at some pointer version, the operator reads it, thinks, says yes; by then
someone else may have moved the channel. The store's compare-and-swap protects the pointer
itself, but only against the version the write read a moment ago, not the one the operator saw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.errors import Conflict

if TYPE_CHECKING:
    from core.site.site import Site


def require_channel_version(site: Site, channel: str, expected: int | None) -> None:
    """Conflict (exit 3) unless ``channel`` is still at pointer version ``expected``.

    ``expected`` is the version the operator was shown. None: the face showed no version for the
    channel, so there is nothing to compare and any state is accepted (a first promote creates
    the channel). A pointer that disappeared since is a conflict too.
    """
    from core.site.channels import channel_status

    for row in channel_status(site):
        if row["channel"] == channel:
            if expected is not None and row["version"] != expected:
                raise Conflict(
                    f"channel moved meanwhile: {channel} is at version {row['version']}, not "
                    f"{expected} as shown; nothing changed, look again and retry"
                )
            return
    if expected:
        raise Conflict(f"channel moved meanwhile: {channel} has no pointer any more; nothing changed")
