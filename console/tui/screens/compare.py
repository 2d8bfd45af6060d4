"""Compare two releases (old -> new): packages changed, added, removed; images added, removed;
per image the files added, removed and modified with byte deltas, biggest first; a filterable list."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Static

import console.tui.actions as actions
from console.render import delta, short, size
from console.tui.messages import DiffLoaded
from console.tui.screens.base import BaseScreen
from console.tui.widgets.cells import InertTable, cell, line
from console.tui.widgets.columns import Col
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import SiteHeader
from core.site.diff import ReleaseDiff, diff_releases

MAX_FILE_ROWS = 1000
IMAGE_COLUMNS = [
    Col("IMAGE", 6, priority=0, flex=1),
    Col("STATE", 7, priority=1),
    Col("ADDED", 3, priority=2),
    Col("REMOVED", 3, priority=2),
    Col("MODIFIED", 3, priority=2),
    Col("Δ BYTES", 6, priority=1),
]
# At 80 columns: what changed, where, and by how much (Δ); the path takes the rest of the width,
# then the sizes before and after when there is room.
FILE_COLUMNS = [
    Col("CHANGE", 7, priority=0),
    Col("IMAGE", 6, priority=1),
    Col("PATH", 20, priority=0, flex=1, claim=30),
    Col("OLD", 6, priority=3),
    Col("NEW", 6, priority=2),
    Col("Δ", 7, priority=0),
]
STYLE = {"added": "green", "removed": "red", "modified": "yellow", "type-changed": "magenta"}


class CompareScreen(BaseScreen):
    SCREEN_ID = "compare"
    BINDINGS = actions.bindings_for("compare")

    def __init__(self, a: str, b: str) -> None:
        super().__init__()
        self.a, self.b = a, b
        self.diff: ReleaseDiff | None = None
        self.search = ""

    def headless_context(self) -> dict[str, object]:
        return {"a": short(self.a), "b": short(self.b)}

    def compose(self) -> ComposeResult:
        yield SiteHeader(f"Compare {short(self.a)} -> {short(self.b)}")
        with Horizontal(id="compare-top"):
            yield Static("comparing…", id="summary", classes="panel")
            yield InertTable(id="image-diff", cursor_type="row")
        yield Input(placeholder="filter files by path or image", id="filter", classes="filter")
        yield InertTable(id="file-diff", cursor_type="row", zebra_stripes=True)
        yield Static("", id="status", classes="status")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        t = self.query_one("#image-diff", InertTable)
        t.set_columns(IMAGE_COLUMNS)
        t.border_title = "images"
        f = self.query_one("#file-diff", InertTable)
        f.set_columns(FILE_COLUMNS)
        f.focus()
        self.work(lambda s: diff_releases(s, self.a, self.b), DiffLoaded, name="diff", title="cannot compare")

    @on(DiffLoaded)
    def _loaded(self, event: DiffLoaded) -> None:
        d = self.diff = event.diff
        text = Text()
        text.append(cell(f"{short(d.a.id)} {d.a.name} {d.a.label}", "bold"))
        text.append("  ->  ")
        text.append(cell(f"{short(d.b.id)} {d.b.name} {d.b.label}", "bold"))
        text.append("\n\n")
        for p in d.packages_changed:
            text.append("  ~ ", style="yellow")
            text.append(cell(f"{p['name']} {p['from']} -> {p['to']}"))
            text.append("\n")
        for p in d.packages_added:
            text.append("  + ", style="green")
            text.append(cell(f"{p['name']} {p.get('version', '')}"))
            text.append("\n")
        for p in d.packages_removed:
            text.append("  - ", style="red")
            text.append(cell(f"{p['name']} {p.get('version', '')}"))
            text.append("\n")
        if not (d.packages_changed or d.packages_added or d.packages_removed):
            text.append("  packages: no change\n", style="dim")
        for arch in d.images_added:
            text.append("  + image ", style="green")
            text.append(cell(arch))
            text.append("\n")
        for arch in d.images_removed:
            text.append("  - image ", style="red")
            text.append(cell(arch))
            text.append("\n")
        self.query_one("#summary", Static).update(text)
        t = self.query_one("#image-diff", InertTable)
        for img in d.images:
            c = img.counts()
            t.add_row(
                img.arch,
                "identical" if img.same else "changed",
                str(c["added"]),
                str(c["removed"]),
                str(c["modified"]),
                delta(img.delta),
            )
        for arch in d.images_added:
            t.add_row(arch, Text("added", style="green"), "-", "-", "-", "-")
        for arch in d.images_removed:
            t.add_row(arch, Text("removed", style="red"), "-", "-", "-", "-")
        self._fill()

    def _fill(self) -> None:
        if self.diff is None:
            return
        f = self.query_one("#file-diff", InertTable)
        f.clear()
        rows = [
            (img.arch, c)
            for img in self.diff.images
            for c in img.changes
            if not self.search or self.search in c.path.lower() or self.search in img.arch
        ]
        rows.sort(key=lambda r: (-abs(r[1].delta), r[1].path, r[0]))
        for arch, c in rows[:MAX_FILE_ROWS]:
            f.add_row(
                Text(c.change, style=STYLE.get(c.change, "")),
                arch,
                c.path,
                size(c.old_size) if c.change != "added" else "-",
                size(c.new_size) if c.change != "removed" else "-",
                delta(c.delta),
            )
        shown = f"{min(len(rows), MAX_FILE_ROWS)} of {len(rows)}" if len(rows) > MAX_FILE_ROWS else str(len(rows))
        self.query_one("#status", Static).update(
            line(
                f" {shown} changed file(s)"
                + (f" matching {self.search!r}" if self.search else "")
                + f"   ≡ console --headless diff {short(self.a)} {short(self.b)} --files"
            )
        )

    def on_input_changed(self, event: Input.Changed) -> None:
        self.search = event.value.strip().lower()
        self._fill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#file-diff", DataTable).focus()

    def action_filter(self) -> None:
        self.set_focus(self.query_one("#filter", Input))  # now: keys typed right after / reach it

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_focus and box.value:
            box.value = ""
            return
        super().action_back()
