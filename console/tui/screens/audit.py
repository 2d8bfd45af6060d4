"""Audit: who did what, when, with what outcome; paged from SQLite, filterable."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.widgets import Input, Static

import console.tui.actions as actions
from console.render import ago
from console.tui.screens.base import PagedView
from console.tui.widgets.cells import cell, line
from console.tui.widgets.columns import Col
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import SiteHeader
from console.tui.widgets.paged_table import PagedTable

# At 80 columns: when (as an age), who, what, on what and how it ended, whole; the timestamp
# once there is room for it.
COLUMNS = [
    Col("TIME", 20, priority=4, max=20),
    Col("AGO", 8, priority=0),
    Col("ACTOR", 8, priority=2, flex=1),
    Col("VERB", 7, priority=1),
    Col("TARGET", 10, priority=3, flex=1),
    Col("OUTCOME", 10, priority=1, flex=2, claim=30),
]


def _target(t: str) -> str:
    return t[7:19] if t.startswith("sha256:") and len(t) == 71 else t


class AuditScreen(PagedView):
    SCREEN_ID = "audit"
    BINDINGS = actions.bindings_for("audit")

    def __init__(self) -> None:
        super().__init__(id="audit")

    def compose(self) -> ComposeResult:
        yield SiteHeader("Audit")
        yield Input(
            placeholder="filter: actor, verb, target, outcome   (esc clears)", id="filter", classes="filter hidden"
        )
        yield PagedTable(COLUMNS, self.fetch, self.count, id="audit-table")
        yield Static("", id="status", classes="status")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.table.focus()
        self._status()

    def fetch(self, site: Any, offset: int, limit: int) -> list[tuple[str, list]]:
        now = site.now()
        out = []
        for rid, time, actor, verb, target, outcome in site.state.audit_log.page(offset, limit, self.search):
            style = "green" if outcome == "ok" else ("yellow" if outcome == "interrupted" else "red")
            out.append(
                (
                    str(rid),
                    [
                        cell(time),
                        cell(ago(time, now)),
                        cell(actor),
                        cell(verb),
                        cell(_target(target)),
                        cell(outcome, style),
                    ],
                )
            )
        return out

    def count(self, site: Any) -> int:
        return site.state.audit_log.count(self.search)

    def filtered(self) -> None:
        self._status()

    def _status(self) -> None:
        n = self.table.total if self.table.total is not None else self.count(self.site)
        self.query_one("#status", Static).update(
            line(f" {n} audit row(s)" + (f" matching {self.search!r}" if self.search else ""))
        )

    def action_refresh(self) -> None:
        self.table.total = None
        self.table.reload(keep_cursor=True)
        self._status()
