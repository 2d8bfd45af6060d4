"""Promote a release from any screen that shows one (the releases list, a release's detail).

Before the operator confirms, the dialog lists what the promote would meet (issue 16): the
channel policy's unmet checks (``core.site.policy.evaluate``, the evaluation ``promote`` gates on)
and the signatures it waits for (``core.site.proposals``: an open proposal, the channel's
threshold). ``assess`` computes that in a thread worker (``PromoteModal``), never on the UI thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import core.site.channels as channel_ops
from console.render import short
from console.tui.lookups import current_channels, release_labels
from console.tui.messages import ChannelUpdated
from console.tui.screens.modals import Confirmed, PromoteModal
from core.errors import DepotError
from core.site.guards import require_channel_version

if TYPE_CHECKING:
    from console.tui.screens.base import BaseScreen
    from core.site.site import Site


@dataclass
class PromoteAssessment:
    """What a promote of ``release`` onto ``channel`` would meet: unmet policy checks, signatures."""

    channel: str
    release: str
    checked: list[str] = field(default_factory=list)  # names of the checks the policy requires
    unmet: list[tuple[str, str, bool]] = field(default_factory=list)  # (check, detail, may be waived)
    threshold: int = 1
    pending: str = ""  # the channel's open proposal, as a line ('' none)
    error: str = ""  # the evaluation itself failed (the promote would refuse the same way)

    @property
    def overridable(self) -> bool:
        """Every unmet check may be waived by ``--override REASON``."""
        return bool(self.unmet) and all(ok for _, _, ok in self.unmet)

    @property
    def blocked(self) -> bool:
        return bool(self.unmet) or bool(self.error)

    def lines(self) -> list[str]:
        """The dialog's lines (none when there is nothing to say: no policy, one signature)."""
        out = []
        if self.error:
            out.append(f"policy of {self.channel}: cannot check: {self.error}")
        if self.unmet:
            out.append(f"policy of {self.channel}: {len(self.unmet)} of {len(self.checked)} check(s) unmet:")
            out += [f"  ✗ {name}: {detail}" + ("" if ok else " (no override)") for name, detail, ok in self.unmet]
            if self.overridable:
                out.append("  an override reason waives them (audited, written into the pointer)")
            else:
                fixed = [name for name, _, ok in self.unmet if not ok]
                out.append(f"  refused: the policy lets no override waive {', '.join(fixed)}")
        elif self.checked and not self.error:
            out.append(f"policy of {self.channel}: every check met ({', '.join(self.checked)})")
        if self.pending:
            out.append(f"pending approval: {self.pending}")
        if self.threshold > 1:
            out.append(
                f"co-signing: {self.channel} needs {self.threshold} signatures; this promote writes a proposal "
                f"that another operator approves (console approve {short(self.release)} --channel {self.channel})"
            )
        return out


def assess(site: Site, release: str, channel: str) -> PromoteAssessment:
    """The policy checks and approvals a promote of ``release`` onto ``channel`` meets (worker thread)."""
    from core.site.policy import evaluate, policy_for
    from core.site.proposals import read_proposal

    out = PromoteAssessment(channel, release, threshold=site.trust.channel_threshold(channel))
    policy = policy_for(site, channel)
    if policy is not None and policy.require:
        try:
            ev = evaluate(site, release, channel)
        except DepotError as exc:
            out.error = str(exc)
        else:
            out.checked = [c.name for c in ev.checks]
            out.unmet = [(c.name, c.detail, c.overridable) for c in ev.unmet]
    try:
        prop = read_proposal(site, channel)
    except DepotError as exc:
        out.pending = f"the proposal on {channel} is unreadable: {exc}"
    else:
        if prop is not None and prop.state == "open":
            ptr, missing = prop.pointer, max(0, prop.threshold - len(prop.signed_by))
            out.pending = (
                f"proposal for version {ptr.version} ({ptr.action} {short(ptr.release)}) has "
                f"{len(prop.signed_by)} of {prop.threshold} signatures, {missing} more needed"
            )
    return out


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
        channel, reason, override = answer.choice, answer.reason, answer.override or None
        expected = current.get(channel, (None, None))[1]
        cmd = screen.log_command("promote", release=short(rid), channel=channel, reason=reason, override=override)

        def run(s: Any) -> Any:
            require_channel_version(s, channel, expected)
            return channel_ops.promote(s, rid, channel, reason, override=override)

        def done(update: Any) -> ChannelUpdated:
            return ChannelUpdated(update, title="promoted" if update.changed else "no change", command=cmd)

        screen.work(run, done, name="promote", title="promote failed")

    gated = {ch for ch in choices if (p := site.config.policies.get(ch)) is not None and p.require}
    modal = PromoteModal(rid, label, choices, assess=lambda s, ch: assess(s, rid, ch), gated=gated)
    screen.app.push_screen(modal, confirmed)
