"""Everything the TUI shows from data goes through here, so nothing in it drives the terminal.

Release names and labels, promote reasons, node names, probe output, audit rows and build logs
are untrusted: an escape sequence in one could set the terminal's title or clear the screen, a
newline could forge a table row, and Textual markup in one (``[red]x[/]``, ``[@click=app.quit]``)
would be interpreted: styled, made clickable, or (an unbalanced ``[/]``) crash the render.

- ``cell(value, style, width)``: one line of data as a rich ``Text`` (never parsed as markup),
  every control character shown as a ``\\x1b``-style escape (``console.render.inert``), cut to
  ``width`` with an ellipsis (or, without a ``width``, wherever it is drawn too narrow: table
  cells keep their whole value and are cut only when drawn). For table cells, labels, titles,
  parts of a line.
- ``line(text, style)``: one line of prose quoting data (a title, a status line, a dialog line):
  like ``cell``, but may wrap where it is shown.
- ``block(text, style)``: text whose newlines are its own (a panel of several entries, the
  command log): newlines and tabs kept, every other control character escaped
  (``render.inert_text``); build it from ``inert`` parts when the data must stay on its line.
- ``log_lines(text)``: a build log's lines, inert, for ``Log.write_lines``.
- ``markup_safe(value)``: for the few places that only take a markup string (the command
  palette): inert, with markup escaped.
- ``InertTable``: a ``DataTable`` whose every cell goes through ``cell`` (a ``Text`` built by a
  screen keeps its styles, with any control character escaped). Screens use it, never
  ``DataTable`` itself (``tests/tui/test_inert.py`` checks), so a newcomer cannot forget. Its
  columns are declared with ``set_columns`` (``console.tui.widgets.columns.Col``) and share out
  the table's width as it is resized; cells hold their whole value (enter shows the row whole).

Notifications are made inert by the app itself (``DepotConsole.notify``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

from rich.text import Span, Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.markup import escape
from textual.widgets import DataTable
from textual.widgets.data_table import Column, ColumnKey

from console.render import inert, inert_text
from console.tui import textual_compat
from console.tui.widgets.columns import Col, layout


def cell(value: object, style: str = "", width: int | None = None, *, wrap: bool = False) -> Text:
    """``value`` as one inert line of ``Text`` in ``style``; cut to ``width`` cells, the last one
    an ellipsis, when it is longer (without ``width``: whole, and cut with an ellipsis where it
    is drawn narrower, e.g. in a table column; ``wrap``: may wrap where it is laid out instead,
    e.g. in a rich ``Table``). ``None`` shows as ``-``."""
    text = Text(
        "-" if value is None else inert(value),
        style=style,
        no_wrap=None if wrap else True,
        overflow=None if wrap else "ellipsis",
        end="",
    )
    if width is not None and text.cell_len > width:
        text.truncate(width, overflow="ellipsis")
    return text


def line(text: object, style: str = "") -> Text:
    """``text`` as one inert line of prose (a title, a status line, a dialog line) that may wrap
    where it is shown: a newline in the data cannot start a line of its own."""
    return cell(text, style, wrap=True)


def block(text: object, style: str = "") -> Text:
    """``text`` as inert ``Text`` that keeps its lines (for a ``Static`` or a ``Label``)."""
    return Text(inert_text("" if text is None else str(text)), style=style, end="")


def log_lines(text: str) -> list[str]:
    """The lines of a chunk of build output, each inert (CRLF line ends are line ends)."""
    return inert_text(text.replace("\r\n", "\n")).splitlines()


def markup_safe(value: object) -> str:
    """``value`` inert and with its markup escaped, for a widget that parses markup strings."""
    return escape(inert(value))


def inert_rich(text: Text) -> Text:
    """``text`` with every control character escaped, its styled spans moved to match."""
    plain = text.plain
    if inert(plain) == plain:
        return text
    starts = [0]
    pieces = []
    for ch in plain:
        piece = inert(ch)
        pieces.append(piece)
        starts.append(starts[-1] + len(piece))
    out = Text(
        "".join(pieces),
        style=text.style,
        justify=text.justify,
        overflow=text.overflow,
        no_wrap=text.no_wrap,
        end=text.end,
    )
    out.spans = [Span(starts[s.start], starts[min(s.end, len(plain))], s.style) for s in text.spans]
    return out


def as_cell(value: Any) -> Text:
    """What a table cell shows for ``value``: a ``Text`` made inert, anything else through ``cell``
    (numbers too, as ``DataTable`` would show them). One line, cut with an ellipsis only where
    it is drawn narrower than it is: the cell keeps its whole value."""
    if isinstance(value, Text):
        text = inert_rich(value)
        if text.no_wrap and text.overflow == "ellipsis":
            return text
        text = text.copy()  # not the caller's Text: it may be shown elsewhere too
        text.no_wrap, text.overflow = True, "ellipsis"
        return text
    if isinstance(value, float):
        return cell(f"{value:.2f}")
    return cell(value)


def cell_width(value: Any) -> int:
    """How many cells ``value`` (a table cell, see ``as_cell``) takes on one line."""
    return value.cell_len if isinstance(value, Text) else len(str(value))


class LaidOutColumn(Column):
    """A column ``InertTable`` sizes itself: at width 0 it is hidden, padding and all (a plain
    ``Column`` of width 0 still draws its padding, a gap in the row)."""

    def get_render_width(self, data_table: DataTable[Any]) -> int:
        return 0 if self.width == 0 and not self.auto_width else super().get_render_width(data_table)


class InertTable(DataTable):
    """A ``DataTable`` that shows data inert: no cell is parsed as markup or reaches the
    terminal with a control character in it. Every table moves as k9s's and lazygit's do:
    ``j``/``k`` down/up, ``g``/``Home`` to the first row, ``G``/``End`` to the last.

    Columns declared with ``set_columns`` share out the table's width (``columns.layout``): the
    important ones get their width first, spare width goes to the flexible ones, and at narrow
    widths the least important give way. The table keeps, per column, the width of the widest
    value it was given since it was last cleared (measured as each value is added: no row is
    measured again later), and lays the columns out again when that or its own width changes.
    Cells keep their whole value; ``row_fields`` gives a row's labels and values, for the row
    detail that ``enter`` opens (``console.tui.screens.row_detail``)."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g,home", "scroll_top", "Top", show=False),
        Binding("G,end", "scroll_bottom", "Bottom", show=False),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.specs: list[Col] = []  # the columns declared with set_columns, in order
        self._wants: dict[str, int] = {}  # column key -> widest value (or label) seen
        self._layout_pending = False
        self._laid_out_at = -1  # the width the columns were last laid out for

    # -- columns ----------------------------------------------------------------------------
    def set_columns(self, specs: Sequence[Col]) -> None:
        """Add the columns ``specs`` (each at its ``min`` width until the table is laid out)."""
        for spec in specs:
            label = Text(spec.label, no_wrap=True, overflow="ellipsis", end="")
            key = spec.column_key
            column_key = self.add_column(label, width=spec.min, key=key)
            self.columns[column_key] = LaidOutColumn(column_key, label, spec.min, content_width=label.cell_len)
            self.specs.append(spec)
            self._wants[key] = label.cell_len
        self._request_layout()

    @property
    def column_widths(self) -> dict[str, int]:
        """Column key -> its width now (0: hidden for want of room)."""
        return {col.key.value or "": col.width for col in self.ordered_columns}

    def _request_layout(self) -> None:
        """Lay the columns out again once the current batch of changes is done."""
        if self.specs and not self._layout_pending:
            self._layout_pending = True
            self.call_later(self.relayout)

    def relayout(self, force: bool = False) -> None:
        """Share the table's width out among its columns (``columns.layout``)."""
        self._layout_pending = False
        if not self.specs or not self.is_mounted:
            return
        width = self.scrollable_content_region.width
        if width <= 0:
            return
        keys = [spec.column_key for spec in self.specs]
        widths = layout(self.specs, [self._wants[k] for k in keys], width, 2 * self.cell_padding)
        changed = False
        for key, new in zip(keys, widths):
            column = self.columns.get(ColumnKey(key))
            if column is not None and (column.width != new or column.auto_width):
                column.width, column.auto_width = new, False
                changed = True
        self._laid_out_at = width
        if changed or force:
            total = sum(col.get_render_width(self) for col in self.columns.values())
            self.virtual_size = Size(total, self.virtual_size.height)
            textual_compat.clear_render_caches(self)
            self.refresh()

    def _measure(self, key: str, value: Any) -> None:
        if key in self._wants:
            w = cell_width(value)
            if w > self._wants[key]:
                self._wants[key] = w
                self._request_layout()

    def on_resize(self, event: events.Resize) -> None:
        self._request_layout()

    def watch_show_vertical_scrollbar(self, shown: bool) -> None:
        """The scrollbar came or went: the columns have that much less or more room."""
        self._request_layout()

    # -- rows -------------------------------------------------------------------------------
    def add_row(self, *cells: Any, height: int | None = 1, key: str | None = None, label: Any = None) -> Any:
        values = [as_cell(c) for c in cells]
        for spec, value in zip(self.specs, values):
            self._measure(spec.column_key, value)
        return super().add_row(*values, height=height, key=key, label=None if label is None else as_cell(label))

    def add_rows(self, rows: Any) -> list[Any]:
        return [self.add_row(*row) for row in rows]

    def update_cell(self, row_key: Any, column_key: Any, value: Any, *, update_width: bool = False) -> None:
        text = as_cell(value)
        key = column_key.value if isinstance(column_key, ColumnKey) else column_key
        self._measure(str(key), text)
        super().update_cell(row_key, column_key, text, update_width=update_width)

    def update_cell_at(self, coordinate: Any, value: Any, *, update_width: bool = False) -> None:
        text = as_cell(value)
        if self.specs and 0 <= coordinate.column < len(self.specs):
            self._measure(self.specs[coordinate.column].column_key, text)
        super().update_cell_at(coordinate, text, update_width=update_width)

    def clear(self, columns: bool = False) -> Self:
        """Remove the rows (and the columns too with ``columns``); the widths measured go with them."""
        super().clear(columns)
        if columns:
            self.specs, self._wants = [], {}
        else:
            for col in self.ordered_columns:
                self._wants[col.key.value or ""] = col.label.cell_len
            self._request_layout()  # narrower rows may follow: columns that gave way come back
        return self

    def row_fields(self, row_index: int | None = None) -> list[tuple[str, Text]]:
        """(label, whole value) of every column of a row (the cursor's by default), hidden
        columns too: what the row detail shows."""
        row = self.cursor_row if row_index is None else row_index
        if not 0 <= row < self.row_count:
            return []
        values = self.get_row_at(row)
        return [(col.label.plain, as_cell(value)) for col, value in zip(self.ordered_columns, values)]

    def watch_virtual_size(self, old: Size, new: Size) -> None:
        """Columns got wider or narrower (``DataTable`` measures new rows when it is idle): drop
        what was drawn at the old widths. Its render caches are not keyed by width, so a header
        or row drawn between ``add_row`` and that measurement kept the old widths for good (the
        channels view's header, squeezed to its labels, above wider rows)."""
        if old.width != new.width:
            textual_compat.clear_render_caches(self)
            self.refresh()
        if self.specs and self.scrollable_content_region.width != self._laid_out_at:
            self._request_layout()
