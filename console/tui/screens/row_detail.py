"""The row detail (k9s's describe): enter on a table row shows every column of it, whole.

Tables cut long values to their column's width (and hide the least important columns on a
narrow terminal); this dialog shows each column's label with the row's whole value, wrapped,
so nothing a table holds is out of reach. The values are the table's own cells, already inert
(``console.tui.widgets.cells``): they are copied, never parsed as markup. esc, enter or q closes.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from console.tui.widgets.cells import cell


def fields_table(fields: Sequence[tuple[str, Text]]) -> Table:
    """Label / value lines: the labels in a column of their own, each value wrapped beside it."""
    grid = Table.grid(padding=(0, 2), expand=True)
    grid.add_column(style="bold", no_wrap=True, justify="right")
    grid.add_column(ratio=1, overflow="fold")
    for label, value in fields:
        text = value.copy()
        text.no_wrap, text.overflow = False, "fold"
        grid.add_row(cell(label), text)
    return grid


class RowDetail(ModalScreen[None]):
    """Every column of one table row, whole; ``fields`` are (label, inert value) pairs."""

    DEFAULT_CSS = """
    RowDetail { align: center middle; }
    RowDetail > #row-detail { width: 90%; max-width: 120; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 0 1; }
    RowDetail #row-detail-title { text-style: bold; height: auto; }
    RowDetail #row-detail-body { height: auto; max-height: 100%; }
    RowDetail #row-detail-help { color: $text-muted; height: 1; }
    """
    BINDINGS = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, title: str, fields: Sequence[tuple[str, Text]]) -> None:
        super().__init__()
        self.title_text = title
        self.fields = list(fields)

    def compose(self) -> ComposeResult:
        with Vertical(id="row-detail"):
            yield Static(cell(self.title_text), id="row-detail-title")
            with VerticalScroll(id="row-detail-body"):
                yield Static(fields_table(self.fields), id="row-detail-fields")
            yield Static(Text("esc, enter or q closes", style="italic"), id="row-detail-help")

    def action_close(self) -> None:
        self.dismiss(None)
