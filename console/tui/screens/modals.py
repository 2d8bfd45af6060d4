"""Modal dialogs: confirmations (No first, No focused), promote, jump to a view, fleet check, build.

Every confirmation shows what will happen (``from -> to``), asks for a reason, shows the headless
command it stands for, and returns None when the operator says No or presses escape.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from console.tui.actions import VIEWS
from console.tui.widgets.cells import cell, line


@dataclass
class Confirmed:
    """What a confirmation returns on Yes."""

    reason: str = ""
    choice: str = ""
    override: str = ""  # promote: the reason that waives the policy's unmet checks (``--override``)


class ConfirmModal(ModalScreen[Confirmed | None]):
    """A yes/no question that defaults to No; optionally asks for a reason."""

    BINDINGS = [Binding("escape", "no", "No", show=False)]

    def __init__(
        self,
        title: str,
        lines: list[str],
        *,
        yes: str = "Yes",
        ask_reason: bool = True,
        command: str = "",
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.title_text = title
        self.lines = lines
        self.yes_label = yes
        self.ask_reason = ask_reason
        self.command = command

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(line(self.title_text), classes="dialog-title")
            for text in self.lines:
                yield Static(line(text), classes="dialog-line")
            if self.ask_reason:
                yield Input(placeholder="reason (recorded in the pointer and the audit log)", id="reason")
            if self.command:
                yield Static(line(f"≡ {self.command}"), classes="headless")
            with Horizontal(classes="buttons"):
                yield Button("No", id="no", variant="primary")
                yield Button(self.yes_label, id="yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "yes":
            reason = self.query_one("#reason", Input).value.strip() if self.ask_reason else ""
            self.dismiss(Confirmed(reason))
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#no", Button).focus()  # enter in the reason never confirms by itself

    def action_no(self) -> None:
        self.dismiss(None)


class PolicyChecked(Message):
    """The promote dialog's policy assessment for one channel, back from its worker."""

    def __init__(self, result: Any) -> None:
        super().__init__()
        self.result = result


class PromoteModal(ModalScreen[Confirmed | None]):
    """Promote a release: pick the channel (its current release is shown as ``from``), give a reason.

    ``assess(site, channel)`` (``console.tui.promote.assess``) runs in a thread worker for the
    channel shown: its lines (unmet policy checks, pending approvals) appear under ``from -> to``.
    For a channel in ``gated`` (it has a policy) Promote is refused until the checks are known, and
    while any is unmet, unless every unmet one may be waived and an override reason is typed."""

    BINDINGS = [Binding("escape", "no", "No", show=False)]

    def __init__(
        self,
        release: str,
        label: str,
        channels: dict[str, tuple[str, str]],
        *,
        assess: Callable[[Any, str], Any] | None = None,
        gated: set[str] | None = None,
    ) -> None:
        super().__init__(id="promote-modal")
        self.release = release
        self.label = label
        self.channels = channels  # channel -> (current short id + label, version)
        self.assess = assess
        self.gated = gated or set()
        self.assessment: dict[str, Any] = {}  # channel -> its PromoteAssessment

    def compose(self) -> ComposeResult:
        names = sorted(self.channels) or ["testing"]
        with Vertical(classes="dialog"):
            yield Label(line(f"Promote {self.release[7:19]} ({self.label})"), classes="dialog-title")
            yield Select([(cell(n), n) for n in names], value=names[0], allow_blank=False, id="channel")
            yield Static("", id="from-to", classes="dialog-line")
            yield Static("", id="policy", classes="dialog-line hidden")
            yield Input(placeholder="reason (recorded in the pointer and the audit log)", id="reason")
            yield Input(
                placeholder="override reason: waives the unmet checks (audited, written into the pointer)",
                id="override",
                classes="hidden",
            )
            yield Static("", id="command", classes="headless")
            with Horizontal(classes="buttons"):
                yield Button("No", id="no", variant="primary")
                yield Button("Promote", id="yes", variant="error")

    def on_mount(self) -> None:
        self._update()
        self.query_one("#no", Button).focus()

    @property
    def channel(self) -> str:
        return str(self.query_one("#channel", Select).value)

    def _update(self) -> None:
        ch = self.channel
        current, version = self.channels.get(ch, ("(none)", "0"))
        self.query_one("#from-to", Static).update(
            line(f"{ch}: {current}  ->  {self.release[7:19]} {self.label}   (version {version} -> {int(version) + 1})")
        )
        self._show_policy()
        if self.assess is not None and ch not in self.assessment:
            self._check(ch)

    def _check(self, channel: str) -> None:
        from console.tui.screens.base import run_site_work

        assess = self.assess
        assert assess is not None
        run_site_work(self, lambda s: assess(s, channel), PolicyChecked, name="promote-policy", title="policy check")

    def on_policy_checked(self, event: PolicyChecked) -> None:
        self.assessment[event.result.channel] = event.result
        if event.result.channel == self.channel:
            self._show_policy()

    def _show_policy(self) -> None:
        ch = self.channel
        found = self.assessment.get(ch)
        lines = found.lines() if found is not None else []
        if found is None and ch in self.gated:
            lines = [f"policy of {ch}: checking…"]
        box = self.query_one("#policy", Static)
        box.update(Text("\n").join(line(text) for text in lines))  # each line inert, the breaks ours
        box.set_class(not lines, "hidden")
        overridable = found is not None and found.overridable
        self.query_one("#override", Input).set_class(not overridable, "hidden")
        waive = " --override …" if overridable else ""
        self.query_one("#command", Static).update(
            line(f"≡ console --headless promote {self.release[7:19]} --channel {ch} --reason …{waive}")
        )

    def refusal(self) -> str:
        """Why Promote is refused now ('' when it is not)."""
        ch = self.channel
        found = self.assessment.get(ch)
        if found is None:
            return f"the policy of {ch} is still being checked" if ch in self.gated else ""
        if found.error:
            return f"the policy of {ch} cannot be checked: {found.error}"
        if not found.unmet:
            return ""
        names = ", ".join(name for name, _, _ in found.unmet)
        if not found.overridable:
            return f"promote refused: {len(found.unmet)} unmet check(s) ({names}) and the policy lets not all be waived"
        if not self.query_one("#override", Input).value.strip():
            return (
                f"promote refused: {len(found.unmet)} unmet check(s) ({names}); type an override reason to waive them"
            )
        return ""

    def on_select_changed(self, event: Select.Changed) -> None:
        self._update()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "yes":
            why = self.refusal()
            if why:
                self.notify(why, title="promote", severity="warning")
                return
            found = self.assessment.get(self.channel)
            waive = self.query_one("#override", Input).value.strip() if found is not None and found.unmet else ""
            self.dismiss(Confirmed(self.query_one("#reason", Input).value.strip(), self.channel, waive))
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#no", Button).focus()

    def action_no(self) -> None:
        self.dismiss(None)


class JumpModal(ModalScreen[str | None]):
    """``:`` then a view name (prefixes work, tab completes): releases, channels, nodes, builds, audit."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog jump"):
            yield Label(line("Jump to view: " + " · ".join(VIEWS)), classes="dialog-title")
            yield Input(placeholder=":", id="jump", suggester=SuggestFromList(VIEWS, case_sensitive=False))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip().lstrip(":").lower()
        hits = [v for v in VIEWS if v.startswith(text)] if text else []
        if len(hits) == 1 or text in VIEWS:
            self.dismiss(text if text in VIEWS else hits[0])
        else:
            self.notify(f"no view {text!r}: " + ", ".join(VIEWS), severity="warning")

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass
class FleetRequest:
    nodeset: str  # may be empty with the Slurm transport and a partition or feature: Slurm picks
    smoke: bool
    channel: str
    transport: str = "ssh"  # ssh | slurm (``--via``)
    partition: str = ""  # with slurm: ``--partition``
    feature: str = ""  # with slurm: ``--feature`` (srun --constraint)

    def command_args(self) -> str:
        """What follows ``fleet check`` headless (node set, ``--via``, Slurm's and smoke options)."""
        parts = [shlex.quote(self.nodeset)] if self.nodeset else []
        if self.transport != "ssh":
            parts += ["--via", self.transport]
        if self.transport == "slurm":
            parts += [
                f"--{k} {shlex.quote(v)}" for k, v in (("partition", self.partition), ("feature", self.feature)) if v
            ]
        if self.smoke:
            parts += ["--smoke", "--channel", shlex.quote(self.channel)]
        return " ".join(parts)


TRANSPORTS = ("ssh", "slurm")


class FleetCheckModal(ModalScreen[FleetRequest | None]):
    """Which nodes to check (a ClusterShell node set), over which transport (ssh per node, or one
    Slurm step, optionally in a partition / on nodes with a feature), and whether to smoke-test a
    channel."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, nodeset: str, channels: list[str], transport: str = "ssh") -> None:
        super().__init__(id="fleet-modal")
        self.nodeset = nodeset
        self.channels = channels or ["production"]
        self.transport = transport if transport in TRANSPORTS else "ssh"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(
                "Fleet check: probe nodes over ssh or Slurm, classify CPUs, optionally smoke-test",
                classes="dialog-title",
            )
            yield Input(self.nodeset, placeholder="node set, e.g. node[001-042],gpu[01-04]", id="nodeset")
            yield Select(
                [("ssh: one ssh per node", "ssh"), ("slurm: one srun step over the nodes", "slurm")],
                value=self.transport,
                allow_blank=False,
                id="transport",
            )
            with Horizontal(id="slurm-where", classes="hidden" if self.transport != "slurm" else ""):
                yield Input(placeholder="slurm partition (optional)", id="partition")
                yield Input(placeholder="slurm feature, e.g. zen3 (optional)", id="feature")
            yield Checkbox("smoke-test the channel's release", id="smoke")
            yield Select([(cell(c), c) for c in self.channels], value=self.channels[0], allow_blank=False, id="channel")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="no", variant="primary")
                yield Button("Start", id="yes", variant="warning")

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "transport":
            self.query_one("#slurm-where").set_class(event.value != "slurm", "hidden")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "yes":
            nodeset = self.query_one("#nodeset", Input).value.strip()
            transport = str(self.query_one("#transport", Select).value)
            slurm = transport == "slurm"
            partition = self.query_one("#partition", Input).value.strip() if slurm else ""
            feature = self.query_one("#feature", Input).value.strip() if slurm else ""
            if not nodeset and not (partition or feature):
                self.notify(
                    "give a node set (or, over slurm, a partition or a feature)" if slurm else "give a node set",
                    severity="warning",
                )
                return
            self.dismiss(
                FleetRequest(
                    nodeset,
                    self.query_one("#smoke", Checkbox).value,
                    str(self.query_one("#channel", Select).value),
                    transport,
                    partition,
                    feature,
                )
            )
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass
class BuildRequest:
    """What the build form returns: the fields of ``console --headless build``."""

    source: str
    builder: str
    targets: str
    publish: bool
    promote: str
    options: list[str]  # KEY=VALUE pairs, as ``--option`` takes them


BUILDERS = ("julia", "python", "command")


class BuildModal(ModalScreen[BuildRequest | None]):
    """Start a build: source spec, builder, target micro-architectures, publish, promote, options."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, builders: list[str]) -> None:
        super().__init__(id="build-modal")
        self.builders = list(BUILDERS) + [b for b in builders if b not in BUILDERS]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("New build: one image per target, built by a background worker", classes="dialog-title")
            yield Input(placeholder="source spec: Julia project dir, requirements.txt or build script", id="source")
            yield Select([(b, b) for b in self.builders], value=self.builders[0], allow_blank=False, id="builder")
            yield Input("x86_64,x86_64_v3", placeholder="targets, e.g. x86_64,x86_64_v3,zen4", id="targets")
            yield Input(placeholder="options KEY=VALUE … (optional, e.g. cpu_target=generic)", id="options")
            yield Checkbox("publish the images as one release when all succeed", value=True, id="publish")
            yield Input(placeholder="then promote to channel (optional, needs publish)", id="promote")
            yield Static("", id="command", classes="headless")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="no", variant="primary")
                yield Button("Start", id="yes", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#source", Input).focus()
        self._show_command()

    def request(self) -> BuildRequest:
        """The form as it stands (options split like a shell line; a bad quote keeps the raw text)."""
        raw = self.query_one("#options", Input).value.strip()
        try:
            options = shlex.split(raw)
        except ValueError:
            options = raw.split()
        return BuildRequest(
            self.query_one("#source", Input).value.strip(),
            str(self.query_one("#builder", Select).value),
            self.query_one("#targets", Input).value.strip(),
            self.query_one("#publish", Checkbox).value,
            self.query_one("#promote", Input).value.strip(),
            options,
        )

    def _show_command(self) -> None:
        self.query_one("#command", Static).update(line(f"≡ {build_command(self.request())}"))

    def on_input_changed(self, event: Input.Changed) -> None:
        self._show_command()

    def on_select_changed(self, event: Select.Changed) -> None:
        self._show_command()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self._show_command()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id != "yes":
            self.dismiss(None)
            return
        req = self.request()
        if not req.source or not req.targets:
            self.notify("a build needs a source and targets", severity="warning")
            return
        self.dismiss(req)

    def action_cancel(self) -> None:
        self.dismiss(None)


def build_command(req: BuildRequest) -> str:
    """The headless command line a build request stands for (shown in the form and the command log)."""
    argv = [
        "console",
        "--headless",
        "build",
        req.source or "SPEC",
        "--builder",
        req.builder,
        "--arch",
        req.targets or "A,B",
    ]
    for opt in req.options:
        argv += ["--option", opt]
    if req.publish:
        argv.append("--publish")
    if req.promote:
        argv += ["--promote", req.promote]
    return shlex.join(argv)
