"""A horizontal bar chart in text: one bar per label, scaled to the widest value."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from console.tui.widgets.cells import cell


def bar_chart(rows: Sequence[tuple[str, int, str]], width: int = 30, title: str = "") -> Table:
    """``rows``: (label, value, note). Returns a rich Table: label, bar, value, note (label and
    note are data: shown inert, never parsed as markup)."""
    top = max((v for _, v, _ in rows), default=0) or 1
    table = Table.grid(padding=(0, 1))
    table.add_column(justify="right", style="bold")
    table.add_column()
    table.add_column(justify="right")
    table.add_column(style="dim")
    if title:
        table.title = cell(title, wrap=True)
    for label, value, note in rows:
        n = max(1, round(value / top * width)) if value else 0
        bar = Text("█" * n, style="red" if "no image" in note else "cyan")
        table.add_row(cell(label, wrap=True), bar, str(value), cell(note, wrap=True))
    return table
