"""Audit: who did what, when, with what outcome; paged from SQLite, filterable."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Footer, Input, Static

from .. import actions
from ..output import ago
from ..widgets.header import SiteHeader
from ..widgets.paged_table import PagedTable
from .base import BaseScreen

COLUMNS = [("TIME", 20), ("AGO", 12), ("ACTOR", 18), ("VERB", 11), ("TARGET", 20), ("OUTCOME", 25)]


def _target(t: str) -> str:
    return t[7:19] if t.startswith("sha256:") and len(t) == 71 else t


class AuditScreen(BaseScreen):
    SCREEN_ID = "audit"
    BINDINGS = actions.bindings_for("audit")

    def __init__(self) -> None:
        super().__init__(id="audit")
        self.search = ""

    def compose(self) -> ComposeResult:
        yield SiteHeader("Audit")
        yield Input(placeholder="filter: actor, verb, target, outcome   (esc clears)", id="filter",
                    classes="filter hidden")
        yield PagedTable(COLUMNS, self.fetch, id="audit-table")
        yield Static("", id="status", classes="status")
        yield Footer()

    @property
    def table(self) -> PagedTable:
        return self.query_one(PagedTable)

    def on_mount(self) -> None:
        self.table.focus()
        self._status()

    def _where(self) -> tuple[str, list]:
        if not self.search:
            return "", []
        s = f"%{self.search}%"
        return "where actor like ? or verb like ? or target like ? or outcome like ?", [s, s, s, s]

    def fetch(self, offset: int, limit: int) -> list[tuple[str, list]]:
        where, params = self._where()
        now = self.site.now()
        rows = self.site.state.db.execute(
            f"select id, time, actor, verb, target, outcome from audit {where} order by id desc limit ? offset ?",
            [*params, limit, offset]).fetchall()
        out = []
        for rid, time, actor, verb, target, outcome in rows:
            style = "green" if outcome == "ok" else ("yellow" if outcome == "interrupted" else "red")
            out.append((str(rid), [time, ago(time, now), actor, verb, _target(target), Text(outcome, style=style)]))
        return out

    def _status(self) -> None:
        where, params = self._where()
        n = self.site.state.db.execute(f"select count(*) from audit {where}", params).fetchone()[0]
        self.query_one("#status", Static).update(
            f" {n} audit row(s)" + (f" matching {self.search!r}" if self.search else ""))

    def action_refresh(self) -> None:
        self.table.reload(keep_cursor=True)
        self._status()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("hidden")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.search = event.value.strip()
        self.table.reload()
        self._status()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if self.search or box.has_focus:
            box.value = ""
            box.add_class("hidden")
            self.table.focus()
            return
        super().action_back()
