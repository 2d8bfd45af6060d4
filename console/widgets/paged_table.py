"""A DataTable fed page by page from SQLite, so 10k-row tables open and scroll at once.

Textual's ``DataTable`` measures every cell it holds; loading 10k rows up front costs seconds.
``PagedTable`` asks its ``fetch(offset, limit)`` callback for one page at a time and appends the
next page when the cursor (or the scroll position) comes near the end of what is loaded.
Columns have fixed widths, so appending a page never re-measures what is already there.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from textual.widgets import DataTable

Row = tuple[str, Sequence[Any]]  # (row key, cells)
Fetch = Callable[[int, int], list[Row]]


class PagedTable(DataTable):
    """Rows come from ``fetch``; call ``reload()`` after changing what ``fetch`` returns."""

    def __init__(self, columns: Sequence[tuple[str, int]], fetch: Fetch, *, page_size: int = 100,
                 **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._columns = list(columns)
        self.fetch = fetch
        self.page_size = page_size
        self.loaded = 0
        self.exhausted = False
        self._loading = False

    def on_mount(self) -> None:
        for label, width in self._columns:
            self.add_column(label, width=width, key=label.lower())
        self.reload()

    def reload(self, keep_cursor: bool = False) -> None:
        """Drop the loaded rows and load the first page again (after a filter or a refresh)."""
        row = self.cursor_row if keep_cursor else 0
        self._loading = True  # clear() moves the cursor too
        try:
            self.clear()
        finally:
            self._loading = False
        self.loaded = 0
        self.exhausted = False
        self.load_more(max(self.page_size, row + 1))
        if self.row_count:
            self.move_cursor(row=min(row, self.row_count - 1), animate=False)

    def load_more(self, count: int | None = None) -> int:
        """Append up to ``count`` (a page by default) more rows; return how many came."""
        if self.exhausted or self._loading:
            return 0
        want = count or self.page_size
        self._loading = True  # add_row moves the cursor, whose watcher would load again
        try:
            rows = self.fetch(self.loaded, want)
            for key, cells in rows:
                self.add_row(*cells, key=key)
        finally:
            self._loading = False
        self.loaded += len(rows)
        if len(rows) < want:
            self.exhausted = True
        return len(rows)

    def _near_end(self) -> None:
        if not self.exhausted and self.cursor_row >= self.row_count - max(10, self.size.height):
            self.load_more()

    def watch_cursor_coordinate(self, old: Any, new: Any) -> None:
        super().watch_cursor_coordinate(old, new)
        self._near_end()

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if not self.exhausted and new >= self.max_scroll_y - self.size.height:
            self.load_more()

    def action_scroll_bottom(self) -> None:
        while self.load_more(1000):
            pass
        super().action_scroll_bottom()

    def action_scroll_end(self) -> None:
        while self.load_more(1000):
            pass
        super().action_scroll_end()

    @property
    def current_key(self) -> str | None:
        """The key of the highlighted row, or None on an empty table."""
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
