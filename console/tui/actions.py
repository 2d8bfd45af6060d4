"""One registry of console actions: it feeds key bindings, the help screen, the command palette and
the ``console --headless …`` equivalent that every action can show.

Each screen takes its bindings from here (``bindings_for``), so a key, its description and the
headless command it stands for are written once. State-changing actions are marked ``mutating``:
in read-only mode ``allowed`` hides them everywhere (footer, help, palette) and refuses to run them.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from textual.binding import Binding

GLOBAL = "*"


# what an unfilled placeholder stands for in a command line (argparse's metavars)
METAVARS = {
    "release": "ID",
    "a": "A",
    "b": "B",
    "channel": "CHANNEL",
    "reason": "REASON",
    "repo": "R",
    "nodeset": "NODESET",
    "build": "ID",
    "source": "SPEC",
    "builder": "BUILDER",
    "targets": "A,B",
}
_GROUP = re.compile(r"\[([^\[\]]*)\]")
_FIELD = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Action:
    """An operator action: where it applies, which key runs it, what it means headless."""

    name: str  # the Textual action name (``action_<name>`` on the screen or app)
    key: str
    description: str
    screens: tuple[str, ...]  # screen ids, or (GLOBAL,)
    mutating: bool = False
    # template, filled with the action's context (``{release}``, ``{channel}``…); ``[…]`` is an
    # optional part, left out when a field in it has no value; '' means no headless equivalent
    headless: str = ""
    show: bool = True  # shown in the footer
    key_display: str | None = None
    cvmfs: bool = False  # only where the site has CernVM-FS targets (help, palette, footer)
    per_screen: tuple[tuple[str, str], ...] = ()  # (screen id, template) where the command differs
    # run before the key reaches the focused widget, so the keys read with it go where it sends
    # the focus ('/' then typing: the filter box)
    priority: bool = False

    def applies_to(self, screen_id: str) -> bool:
        return GLOBAL in self.screens or screen_id in self.screens

    def template(self, screen_id: str = "") -> str:
        return dict(self.per_screen).get(screen_id, self.headless)

    def command(self, screen_id: str = "", **context: object) -> str:
        """The headless command line on ``screen_id``, context values quoted for a shell ('' if
        there is none). A field without a value reads as its metavar (``ID``, ``CHANNEL``), as in
        ``console VERB --help``; an optional part without one is left out."""
        template = self.template(screen_id)
        if not template:
            return ""
        quoted = {k: shlex.quote(str(v)) for k, v in context.items() if v not in (None, "")}

        def group(m: re.Match[str]) -> str:
            return m.group(1) if all(f in quoted for f in _FIELD.findall(m.group(1))) else ""

        text = " ".join(_GROUP.sub(group, template).split())  # blanks of the template, not of the values
        return _FIELD.sub(lambda m: quoted.get(m.group(1), METAVARS.get(m.group(1), m.group(1).upper())), text)


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
        priority=True,
    ),
    Action("open", "enter", "Open", ("releases",), headless="console --headless show {release}"),
    # enter on a row of any other table: every column of it, whole (k9s's describe); the
    # headless listings print those rows, nothing prints one row alone
    Action(
        "detail",
        "enter",
        "Row detail",
        ("release", "compare", "channels", "nodes", "fleetcheck", "builds", "audit"),
        show=False,
    ),
    Action("mark", "space", "Mark", ("releases", "nodes"), show=True),
    Action("compare", "c", "Compare", ("releases",), headless="console --headless diff {a} {b} --files"),
    Action(
        "promote",
        "p",
        "Promote",
        ("releases", "release"),
        mutating=True,
        headless="console --headless promote {release} --channel {channel}[ --reason {reason}][ --override {override}]",
    ),
    Action(
        "refresh",
        "r",
        "Refresh",
        ("releases", "channels", "nodes", "builds", "audit", "rollout"),
        headless="console --headless releases",
        per_screen=(
            ("channels", "console --headless channels"),
            ("nodes", "console --headless nodes"),
            ("builds", "console --headless builds"),
            ("audit", "console --headless audit"),
            ("rollout", "console --headless rollout status"),
        ),
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
        headless="console --headless rollback --channel {channel}[ --to {release}][ --reason {reason}]",
    ),
    Action(
        "refresh_pointer",
        "e",
        "Renew expiry",
        ("channels",),
        mutating=True,
        headless="console --headless refresh --channel {channel}[ --reason {reason}]",
    ),
    Action(
        "sync_cvmfs",
        "s",
        "Sync CVMFS",
        ("channels",),
        mutating=True,
        headless="console --headless cvmfs sync[ --repo {repo}] --channel {channel}",
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
        per_screen=(("fleetcheck", ""),),  # ctrl+c stops a headless fleet check: no verb of its own
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
    Action("view('audit')", "5", "Audit", (GLOBAL,), headless="console --headless audit", show=False),
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
            out.append(
                Binding(
                    a.key,
                    a.name,
                    a.description,
                    show=a.show,
                    key_display=a.key_display,
                    priority=a.priority,
                    id=a.name,
                )
            )
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
