"""Promote a release from any screen that shows one (the releases list, a release's detail)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import core.site.channels as channel_ops
from console.render import short
from console.tui.lookups import current_channels, release_labels
from console.tui.messages import ChannelUpdated
from console.tui.screens.modals import Confirmed, PromoteModal
from core.site.guards import require_channel_version

if TYPE_CHECKING:
    from console.tui.screens.base import BaseScreen


def start_promote(screen: BaseScreen, rid: str) -> None:
    """Ask which channel and why (default No), then promote in a worker; show conflicts as errors.

    The promote refuses (Conflict) when the channel moved after the dialog showed it. Success
    comes back as ``ChannelUpdated``: the app tells the operator and every open view reloads.
    """
    site = screen.site
    labels = release_labels(site)
    names = {i: f"{name} {lab}" for i, (name, lab) in labels.items()}
    label = names.get(rid, "")
    current = current_channels(site)
    choices = {ch: (f"{short(r)} {names.get(r, '')}", str(v)) for ch, (r, v) in current.items()}
    if not choices:  # creating a channel is explicit, and headless (issue 18 item 2)
        screen.notify(
            f"the site has no channels yet: create one with 'console channels create NAME {short(rid)}'",
            title="promote",
            severity="warning",
        )
        return

    def confirmed(answer: Confirmed | None) -> None:
        if answer is None:
            screen.notify("promote cancelled: nothing changed")
            return
        channel, reason = answer.choice, answer.reason
        expected = current.get(channel, (None, None))[1]
        cmd = screen.log_command("promote", release=short(rid), channel=channel, reason=reason)

        def run(s: Any) -> Any:
            require_channel_version(s, channel, expected)
            return channel_ops.promote(s, rid, channel, reason)

        def done(update: Any) -> ChannelUpdated:
            return ChannelUpdated(update, title="promoted" if update.changed else "no change", command=cmd)

        screen.work(run, done, name="promote", title="promote failed")

    screen.app.push_screen(PromoteModal(rid, label, choices), confirmed)
