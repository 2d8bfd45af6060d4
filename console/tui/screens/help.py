"""``?``: every key of every view from the action registry, with its headless equivalent, and the
command log (the headless commands the actions of this session stood for)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

import console.tui.actions as actions
from console.render import inert
from console.tui.widgets.cells import block, cell
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import SiteHeader

SECTIONS = [
    ("everywhere", actions.GLOBAL),
    ("releases", "releases"),
    ("release", "release"),
    ("compare", "compare"),
    ("channels", "channels"),
    ("nodes", "nodes"),
    ("fleet check", "fleetcheck"),
    ("builds", "builds"),
    ("audit", "audit"),
]


def _key(a: actions.Action) -> str:
    return a.key_display or {"escape": "esc", "enter": "enter", "space": "space"}.get(a.key, a.key)


class HelpScreen(Screen):
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close")]

    def __init__(self, origin: Screen | None = None) -> None:
        super().__init__()
        self.origin = origin  # the view help was opened on: its actions' commands are filled in
        self.commands: dict[tuple[str, str], str] = {}  # (section's screen id, action) -> shown (tests)

    def _command(self, sid: str, a: actions.Action) -> str:
        from console.tui.screens.base import BaseScreen

        o = self.origin
        if isinstance(o, BaseScreen) and sid in (actions.GLOBAL, o.SCREEN_ID):
            return o.headless_for(a)
        return a.command(sid)

    def compose(self) -> ComposeResult:
        read_only = self.app.read_only  # type: ignore[attr-defined]
        cvmfs = bool(self.app.site.config.cvmfs.targets)  # type: ignore[attr-defined]
        self.listed: list[str] = []  # descriptions shown (tests read it)
        yield SiteHeader("Keys")
        with VerticalScroll(id="help-body"):
            narrow = self.app.size.width < 100  # 80 columns: the commands get the width, not the gaps
            table = Table(expand=True, box=None, padding=(0, 1 if narrow else 2), show_header=True, header_style="bold")
            table.add_column("VIEW", style="bold magenta", width=10 if narrow else 12)
            table.add_column("KEY", style="bold cyan", width=6 if narrow else 8)
            table.add_column("ACTION", width=19 if narrow else 22)
            table.add_column("HEADLESS EQUIVALENT", style="dim")
            for title, sid in SECTIONS:
                first = True
                for a in actions.ACTIONS:
                    if sid not in a.screens or not actions.allowed(a.name, read_only) or (a.cvmfs and not cvmfs):
                        continue
                    cmd = self.commands[(sid, a.name)] = self._command(sid, a)
                    table.add_row(title if first else "", _key(a), a.description, cell(cmd or "-", wrap=True))
                    self.listed.append(a.description)
                    first = False
            yield Static(table, id="help-table")
            note = (
                "read-only mode: state-changing actions are hidden"
                if read_only
                else "ctrl+p: command palette (every action that applies now)   esc: back   : jump to a view"
            )
            yield Static(Text(note, style="italic"), classes="section")
            log = self.app.command_log  # type: ignore[attr-defined]
            yield Static(
                Text("command log (headless equivalents of this session's actions)", style="bold"), classes="section"
            )
            yield Static(block("\n".join(f"  {inert(c)}" for c in log[-20:]) or "  (nothing yet)"), id="command-log")
        yield ConsoleFooter()
