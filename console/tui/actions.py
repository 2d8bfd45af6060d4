"""One registry of console actions: it feeds key bindings, the help screen, the command palette and
the ``console --headless …`` equivalent that every action can show.

Each screen takes its bindings from here (``bindings_for``), so a key, its description and the
headless command it stands for are written once. State-changing actions are marked ``mutating``:
in read-only mode ``allowed`` hides them everywhere (footer, help, palette) and refuses to run them.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from textual.binding import Binding

GLOBAL = "*"


@dataclass(frozen=True)
class Action:
    """An operator action: where it applies, which key runs it, what it means headless."""

    name: str  # the Textual action name (``action_<name>`` on the screen or app)
    key: str
    description: str
    screens: tuple[str, ...]  # screen ids, or (GLOBAL,)
    mutating: bool = False
    headless: str = ""  # template, formatted with the action's context (``{release}``, ``{channel}``…)
    show: bool = True  # shown in the footer
    key_display: str | None = None
    cvmfs: bool = False  # only where the site has CernVM-FS targets (help, palette, footer)

    def applies_to(self, screen_id: str) -> bool:
        return GLOBAL in self.screens or screen_id in self.screens

    def command(self, **context: object) -> str:
        """The headless command line, with context values quoted for a shell ('' if none)."""
        if not self.headless:
            return ""
        quoted = {k: shlex.quote(str(v)) for k, v in context.items() if v not in (None, "")}
        try:
            return self.headless.format(**quoted)
        except KeyError:
            return self.headless


ACTIONS: list[Action] = [
    # everywhere
    Action("help", "question_mark", "Keys", (GLOBAL,), key_display="?"),
    Action("jump", "colon", "Jump to view", (GLOBAL,), key_display=":"),
    Action("command_palette", "ctrl+p", "Commands", (GLOBAL,), show=False),
    Action("back", "escape", "Back", (GLOBAL,), show=False),
    Action("quit", "q", "Quit", (GLOBAL,)),
    # releases
    Action(
        "filter",
        "slash",
        "Filter",
        ("releases", "audit", "nodes", "compare"),
        key_display="/",
        headless="console --headless releases",
    ),
    Action("open", "enter", "Open", ("releases",), headless="console --headless show {release}"),
    Action("mark", "space", "Mark", ("releases", "nodes"), show=True),
    Action("compare", "c", "Compare", ("releases",), headless="console --headless diff {a} {b} --files"),
    Action(
        "promote",
        "p",
        "Promote",
        ("releases", "release"),
        mutating=True,
        headless="console --headless promote {release} --channel {channel} --reason {reason}",
    ),
    Action(
        "refresh",
        "r",
        "Refresh",
        ("releases", "channels", "nodes", "builds", "audit", "rollout"),
        headless="console --headless releases",
    ),
    # release detail
    Action(
        "show_compare_parent",
        "c",
        "Compare with parent",
        ("release",),
        headless="console --headless diff {a} {b} --files",
    ),
    # channels
    Action(
        "rollback",
        "b",
        "Roll back",
        ("channels",),
        mutating=True,
        headless="console --headless rollback --channel {channel} --to {release} --reason {reason}",
    ),
    Action(
        "refresh_pointer",
        "e",
        "Renew expiry",
        ("channels",),
        mutating=True,
        headless="console --headless refresh --channel {channel}",
    ),
    Action(
        "sync_cvmfs",
        "s",
        "Sync CVMFS",
        ("channels",),
        mutating=True,
        headless="console --headless cvmfs sync --repo {repo} --channel {channel}",
        cvmfs=True,
    ),
    # nodes
    Action(
        "fleet_check",
        "f",
        "Fleet check",
        ("nodes",),
        mutating=True,
        headless="console --headless fleet check {nodeset}",
    ),
    Action(
        "cancel",
        "x",
        "Cancel",
        ("fleetcheck", "builds"),
        mutating=True,
        headless="console --headless builds cancel {build}",
    ),
    # builds
    Action(
        "new_build",
        "n",
        "New build",
        ("builds",),
        mutating=True,
        headless="console --headless build {source} --builder {builder} --arch {targets}",
    ),
    Action("view_log", "l", "Log", ("builds",), headless="console --headless builds log {build} --follow"),
    # views (the palette offers them; ``:`` jumps)
    Action("view('releases')", "1", "Releases", (GLOBAL,), headless="console --headless releases", show=False),
    Action("view('channels')", "2", "Channels", (GLOBAL,), headless="console --headless channels", show=False),
    Action("view('nodes')", "3", "Nodes", (GLOBAL,), headless="console --headless nodes", show=False),
    Action("view('builds')", "4", "Builds", (GLOBAL,), headless="console --headless builds", show=False),
    Action("view('audit')", "5", "Audit", (GLOBAL,), show=False),
    Action("view('rollout')", "6", "Rollout", (GLOBAL,), headless="console --headless rollout status", show=False),
]

BY_NAME: dict[str, Action] = {a.name: a for a in ACTIONS}
VIEWS = ("releases", "channels", "nodes", "builds", "audit", "rollout")


def action(name: str) -> Action:
    return BY_NAME[name]


def allowed(name: str, read_only: bool) -> bool:
    """False for a state-changing action in read-only mode (and for unknown names: never guess)."""
    a = BY_NAME.get(name)
    if a is None:
        return True
    return not (read_only and a.mutating)


def bindings_for(screen_id: str) -> list[Binding]:
    """Key bindings of one screen (global ones are bound on the app)."""
    out = []
    for a in ACTIONS:
        if screen_id in a.screens:
            out.append(Binding(a.key, a.name, a.description, show=a.show, key_display=a.key_display, id=a.name))
    return out


def global_bindings() -> list[Binding]:
    out = []
    for a in ACTIONS:
        if GLOBAL in a.screens and a.name != "command_palette":
            out.append(
                Binding(
                    a.key,
                    a.name,
                    a.description,
                    show=a.show,
                    key_display=a.key_display,
                    id=a.name.split("(")[0] + (a.key if "(" in a.name else ""),
                )
            )
    return out


def for_screen(screen_id: str, read_only: bool) -> list[Action]:
    """The actions that apply on a screen now (help screen, palette)."""
    return [a for a in ACTIONS if a.applies_to(screen_id) and allowed(a.name, read_only)]
