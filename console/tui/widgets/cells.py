"""Everything the TUI shows from data goes through here, so nothing in it drives the terminal.

Release names and labels, promote reasons, node names, probe output, audit rows and build logs
are untrusted: an escape sequence in one could set the terminal's title or clear the screen, a
newline could forge a table row, and Textual markup in one (``[red]x[/]``, ``[@click=app.quit]``)
would be interpreted: styled, made clickable, or (an unbalanced ``[/]``) crash the render.

- ``cell(value, style, width)``: one line of data as a rich ``Text`` (never parsed as markup),
  every control character shown as a ``\\x1b``-style escape (``console.render.inert``), cut to
  ``width`` with an ellipsis. For table cells, labels, titles, parts of a line.
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
  ``DataTable`` itself (``tests/tui/test_inert.py`` checks), so a newcomer cannot forget.

Notifications are made inert by the app itself (``DepotConsole.notify``).
"""

from __future__ import annotations

from typing import Any

from rich.text import Span, Text
from textual.binding import Binding
from textual.geometry import Size
from textual.markup import escape
from textual.widgets import DataTable

from console.render import inert, inert_text
from console.tui import textual_compat


def cell(value: object, style: str = "", width: int | None = None, *, wrap: bool = False) -> Text:
    """``value`` as one inert line of ``Text`` in ``style``; cut to ``width`` cells, the last one
    an ellipsis, when it is longer (``wrap``: may wrap where it is laid out, e.g. in a rich
    ``Table``). ``None`` shows as ``-``."""
    text = Text("-" if value is None else inert(value), style=style, no_wrap=None if wrap else True, end="")
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


def fit(value: str | Text | None, width: int) -> Text:
    """``value`` (data or a ``Text`` a screen built) inert and cut to ``width`` cells."""
    if isinstance(value, Text):
        text = inert_rich(value)
        if text.cell_len <= width:
            return text
        cut = text.copy()
        cut.truncate(width, overflow="ellipsis")
        return cut
    return cell(value, width=width)


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


def as_cell(value: Any) -> Any:
    """What a table cell shows for ``value``: a ``Text`` made inert, anything else through ``cell``
    (numbers too, as ``DataTable`` would show them)."""
    if isinstance(value, Text):
        return inert_rich(value)
    if isinstance(value, float):
        return cell(f"{value:.2f}")
    return cell(value)


class InertTable(DataTable):
    """A ``DataTable`` that shows data inert: no cell is parsed as markup or reaches the
    terminal with a control character in it. Every table moves as k9s's and lazygit's do:
    ``j``/``k`` down/up, ``g``/``Home`` to the first row, ``G``/``End`` to the last."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g,home", "scroll_top", "Top", show=False),
        Binding("G,end", "scroll_bottom", "Bottom", show=False),
    ]

    def add_row(self, *cells: Any, height: int | None = 1, key: str | None = None, label: Any = None) -> Any:
        return super().add_row(
            *(as_cell(c) for c in cells), height=height, key=key, label=None if label is None else as_cell(label)
        )

    def add_rows(self, rows: Any) -> list[Any]:
        return [self.add_row(*row) for row in rows]

    def update_cell(self, row_key: Any, column_key: Any, value: Any, *, update_width: bool = False) -> None:
        super().update_cell(row_key, column_key, as_cell(value), update_width=update_width)

    def update_cell_at(self, coordinate: Any, value: Any, *, update_width: bool = False) -> None:
        super().update_cell_at(coordinate, as_cell(value), update_width=update_width)

    def watch_virtual_size(self, old: Size, new: Size) -> None:
        """Columns got wider or narrower (``DataTable`` measures new rows when it is idle): drop
        what was drawn at the old widths. Its render caches are not keyed by width, so a header
        or row drawn between ``add_row`` and that measurement kept the old widths for good (the
        channels view's header, squeezed to its labels, above wider rows)."""
        if old.width != new.width:
            textual_compat.clear_render_caches(self)
            self.refresh()
