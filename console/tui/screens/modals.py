"""Modal dialogs: confirmations (No first, No focused), promote, jump to a view, fleet check, build.

Every confirmation shows what will happen (``from -> to``), asks for a reason (the focus starts
there: typing it is the first thing to do; enter in it moves to No, never confirms), shows the
headless command it stands for (the ``≡`` line: exactly what would run, shell-quoted, updated as
the reason or an option is typed), and returns None when the operator says No or presses escape.
Dialogs fit the terminal (``console.tcss``: at most its width and height, the content wraps, a
tall one scrolls above its buttons, which stay in view).
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

import console.tui.actions as actions
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
        command: str | Callable[[str], str] = "",
        id: str | None = None,
    ) -> None:
        """``command``: the headless equivalent, or a function of the reason typed that gives it
        (the ``≡`` line follows the reason field as the operator types)."""
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
                yield Static(self._command_line(""), id="command", classes="headless")
            with Horizontal(classes="buttons"):
                yield Button("No", id="no", variant="primary")
                yield Button(self.yes_label, id="yes", variant="error")

    def _command_line(self, reason: str) -> Text:
        cmd = self.command(reason) if callable(self.command) else self.command
        return line(f"≡ {cmd}")

    def on_mount(self) -> None:
        self.query_one("#reason" if self.ask_reason else "#no").focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "reason" and self.command:
            self.query_one("#command", Static).update(self._command_line(event.value.strip()))

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

    No channel is picked beforehand: pointing the wrong channel (``production``, first in the
    list) at a release is the mistake to avoid, so Promote is refused until one is chosen.

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
            yield Select(
                [(cell(n), n) for n in names],
                prompt="channel: pick one",
                allow_blank=True,
                value=Select.NULL,
                id="channel",
            )
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
        self.query_one("#reason", Input).focus()

    @property
    def channel(self) -> str:
        """The channel picked ('' while none is)."""
        value = self.query_one("#channel", Select).value
        return "" if value is Select.NULL else str(value)

    def _update(self) -> None:
        ch = self.channel
        if not ch:
            text = "pick the channel: its current release and version show here"
        else:
            current, version = self.channels.get(ch, ("(none)", "0"))
            text = f"{ch}: {current}  ->  {self.release[7:19]} {self.label}   (version {version} -> {int(version) + 1})"
        self.query_one("#from-to", Static).update(line(text))
        self._show_policy()
        if ch and self.assess is not None and ch not in self.assessment:
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
        self._show_command()

    def _override(self) -> str:
        """The override reason the promote would carry: typed, and only while checks are unmet."""
        found = self.assessment.get(self.channel)
        return self.query_one("#override", Input).value.strip() if found is not None and found.unmet else ""

    def command(self) -> str:
        """The headless command Promote stands for now: what is typed, quoted for a shell (the same
        line the promote is logged as, ``BaseScreen.log_command``)."""
        return actions.action("promote").command(
            release=self.release[7:19],
            channel=self.channel,
            reason=self.query_one("#reason", Input).value.strip(),
            override=self._override(),
        )

    def _show_command(self) -> None:
        self.query_one("#command", Static).update(line(f"≡ {self.command()}"))

    def refusal(self) -> str:
        """Why Promote is refused now ('' when it is not)."""
        ch = self.channel
        if not ch:
            return "pick the channel to promote to"
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

    def on_input_changed(self, event: Input.Changed) -> None:
        self._show_command()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "yes":
            why = self.refusal()
            if why:
                self.notify(why, title="promote", severity="warning")
                return
            self.dismiss(Confirmed(self.query_one("#reason", Input).value.strip(), self.channel, self._override()))
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
    """What the fleet-check form returns: the options of ``console --headless fleet check`` it
    stands for, carried to the check itself (``FleetCheckScreen``)."""

    nodeset: str  # may be empty with the Slurm transport and a partition or feature: Slurm picks
    smoke: bool
    channel: str
    transport: str = "ssh"  # ssh | slurm (``--via``)
    partition: str = ""  # with slurm: ``--partition``
    feature: str = ""  # with slurm: ``--feature`` (srun --constraint)
    hydrate: bool = False  # ``--hydrate``: the channel's release onto each node first
    ssh_config: str = ""  # with ssh: ``--ssh-config FILE`` ('' the site's [fleet] ssh_config)
    timeout: float | None = None  # ``--timeout S`` (None the site's [fleet] timeout)
    default_transport: str = "ssh"  # the site's [fleet] transport: ``--via`` only when it differs

    def command_args(self) -> str:
        """What follows ``fleet check`` headless (node set, ``--via``, Slurm's, hydrate, smoke,
        ssh and timeout options), each value quoted for a shell."""
        parts = [shlex.quote(self.nodeset)] if self.nodeset else []
        if self.transport != self.default_transport:
            parts += ["--via", self.transport]
        if self.transport == "slurm":
            parts += [
                f"--{k} {shlex.quote(v)}" for k, v in (("partition", self.partition), ("feature", self.feature)) if v
            ]
        if self.hydrate:
            parts.append("--hydrate")
        if self.smoke:
            parts.append("--smoke")
        if self.hydrate or self.smoke:
            parts += ["--channel", shlex.quote(self.channel)]
        if self.ssh_config and self.transport == "ssh":
            parts += ["--ssh-config", shlex.quote(self.ssh_config)]
        if self.timeout is not None:
            parts += ["--timeout", str(int(self.timeout)) if self.timeout.is_integer() else repr(self.timeout)]
        return " ".join(parts)

    def command(self) -> str:
        """The whole headless command line (the form's ``≡`` line, the command log's entry)."""
        return f"console --headless fleet check {self.command_args()}".rstrip()


TRANSPORTS = ("ssh", "slurm")


class FleetCheckModal(ModalScreen[FleetRequest | None]):
    """Which nodes to check (a ClusterShell node set), over which transport (ssh per node, with an
    ssh client config, or one Slurm step, optionally in a partition / on nodes with a feature),
    whether to hydrate and smoke-test a channel, the deadline per node; the ``≡`` line is the
    ``console --headless fleet check`` command with those options, as they are typed."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, nodeset: str, channels: list[str], transport: str = "ssh") -> None:
        super().__init__(id="fleet-modal")
        self.nodeset = nodeset
        self.channels = channels or ["production"]
        self.transport = transport if transport in TRANSPORTS else "ssh"  # the site's default

    def compose(self) -> ComposeResult:
        slurm = self.transport == "slurm"
        with Vertical(classes="dialog"):
            yield Label(
                line("Fleet check: probe CPUs and images; optionally hydrate, smoke-test"), classes="dialog-title"
            )
            with Horizontal(classes="row"):
                yield Input(self.nodeset, placeholder="node set, e.g. node[001-042],gpu[01-04]", id="nodeset")
                yield Select(
                    [("ssh: per node", "ssh"), ("slurm: one srun", "slurm")],
                    value=self.transport,
                    allow_blank=False,
                    id="transport",
                )
            with Horizontal(classes="row"):
                yield Checkbox("hydrate", id="hydrate")
                yield Checkbox("smoke-test", id="smoke")
                yield Select(
                    [(cell(c), c) for c in self.channels], value=self.channels[0], allow_blank=False, id="channel"
                )
            with Horizontal(classes="row"):
                with Horizontal(id="ssh-where", classes="hidden" if slurm else ""):
                    yield Input(placeholder="ssh config file (optional)", id="ssh-config")
                with Horizontal(id="slurm-where", classes="" if slurm else "hidden"):
                    yield Input(placeholder="partition (optional)", id="partition")
                    yield Input(placeholder="feature, e.g. zen3", id="feature")
                yield Input(placeholder="timeout s", id="timeout", restrict=r"[0-9.]*")
            yield Static("", id="command", classes="headless")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="no", variant="primary")
                yield Button("Start", id="yes", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#nodeset", Input).focus()
        self._show_command()

    def request(self) -> FleetRequest:
        """The form as it stands (a timeout that is no number reads as none; ``problem`` says so)."""
        transport = str(self.query_one("#transport", Select).value)
        slurm = transport == "slurm"
        try:
            timeout: float | None = float(self.query_one("#timeout", Input).value.strip())
        except ValueError:
            timeout = None
        return FleetRequest(
            self.query_one("#nodeset", Input).value.strip(),
            self.query_one("#smoke", Checkbox).value,
            str(self.query_one("#channel", Select).value),
            transport,
            self.query_one("#partition", Input).value.strip() if slurm else "",
            self.query_one("#feature", Input).value.strip() if slurm else "",
            hydrate=self.query_one("#hydrate", Checkbox).value,
            ssh_config="" if slurm else self.query_one("#ssh-config", Input).value.strip(),
            timeout=timeout,
            default_transport=self.transport,
        )

    def problem(self) -> str:
        """Why Start is refused now ('' when it is not)."""
        req = self.request()
        slurm = req.transport == "slurm"
        if not req.nodeset and not (req.partition or req.feature):
            return "give a node set (or, over slurm, a partition or a feature)" if slurm else "give a node set"
        typed = self.query_one("#timeout", Input).value.strip()
        if typed and (req.timeout is None or req.timeout <= 0):
            return f"timeout {typed!r}: give seconds, a number above 0"
        return ""

    def _show_command(self) -> None:
        self.query_one("#command", Static).update(line(f"≡ {self.request().command()}"))

    def on_input_changed(self, event: Input.Changed) -> None:
        self._show_command()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self._show_command()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "transport":
            slurm = event.value == "slurm"
            self.query_one("#slurm-where").set_class(not slurm, "hidden")
            self.query_one("#ssh-where").set_class(slurm, "hidden")
        self._show_command()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "yes":
            why = self.problem()
            if why:
                self.notify(why, severity="warning")
                return
            self.dismiss(self.request())
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
    create: bool = False  # ``--create``: the promote channel may be a new one


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
            with Horizontal(classes="row"):  # rows of fields: the form fits 24 lines
                yield Input(placeholder="source spec: Julia project dir, requirements.txt or build script", id="source")
            with Horizontal(classes="row"):
                yield Select([(b, b) for b in self.builders], value=self.builders[0], allow_blank=False, id="builder")
                yield Input("x86_64,x86_64_v3", placeholder="targets, e.g. x86_64,x86_64_v3,zen4", id="targets")
            with Horizontal(classes="row"):
                yield Input(placeholder="options KEY=VALUE … (optional, e.g. cpu_target=generic)", id="options")
            with Horizontal(classes="row"):
                yield Checkbox("publish as one release", value=True, id="publish")
                yield Input(placeholder="then promote to channel (optional)", id="promote")
                yield Checkbox("new channel", value=False, id="create")
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
            self.query_one("#create", Checkbox).value,
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
        if req.create:
            argv.append("--create")
    return shlex.join(argv)
