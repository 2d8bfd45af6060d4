"""A DataTable that is a fixed-size window over an SQLite query, so 10k-row tables open and scroll
with constant cost per key press.

Textual's ``DataTable`` measures every cell it holds, and keeps getting slower as rows pile up.
``PagedTable`` holds at most ``window`` rows (about two screens). Its rows are *slots* ``"0"…"n-1"``;
``keys[i]`` is the data key shown in slot ``i`` and ``first`` the query offset of slot 0. When the
cursor comes within a screen of either edge of the window, the window slides (``LIMIT``/``OFFSET``)
so the cursor sits in its middle again, and the cells are updated in place inside one
``batch_update()``: no row is added or removed, nothing is re-measured. The cursor and the scroll
position move by the same amount, so what the operator sees does not jump.

``fetch(site, offset, limit)`` returns ``[(key, cells), …]`` and ``count(site)`` the number of rows
(only needed for ``end``). Both take a ``Site`` so that `reload_in_background` can run them in a
worker thread with a Site (an SQLite connection) of its own; that worker posts its rows back as a
message, and the table announces them to its screen with ``TableReloaded``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from textual import on
from textual.widget import Widget

from console.tui import textual_compat
from console.tui.messages import RowsFetched, TableReloaded
from console.tui.widgets.cells import InertTable
from console.tui.widgets.columns import Col

if TYPE_CHECKING:
    from core.site.site import Site

Row = tuple[str, Sequence[Any]]  # (row key, cells)
Fetch = Callable[["Site", int, int], list[Row]]
Count = Callable[["Site"], int]


class PagedTable(InertTable):
    """Rows come from ``fetch`` (shown inert, as every ``InertTable``'s, in ``columns`` that
    share out the table's width); call ``reload()`` (or `reload_in_background`) after changing
    what ``fetch`` returns (a filter, a mark, a refresh). Sliding the window updates the cells in
    place with their whole values, measuring only the rows that came in (``InertTable``)."""

    def __init__(
        self,
        columns: Sequence[Col],
        fetch: Fetch,
        count: Count | None = None,
        *,
        window: int | None = None,
        load_on_mount: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._columns = list(columns)
        self._colkeys = [c.column_key for c in self._columns]
        self.fetch = fetch
        self.count = count
        self._window = window
        self.load_on_mount = load_on_mount
        self.first = 0  # query offset of slot 0
        self.keys: list[str] = []  # data key per slot
        self.at_end = False  # the last slot holds the query's last row
        self.total: int | None = None  # rows in the query, when known
        self.fetching = False  # a background reload is on its way
        self._generation = 0
        self._quiet = False  # set while the table moves its own cursor / scroll
        self._styles_seen: tuple[object, ...] | None = None
        # DataTable's render caches are sized for big tables (10k cells); a window needs a few
        # hundred, and smaller caches leave far less for the cyclic garbage collector to walk.
        textual_compat.shrink_render_caches(
            self, {"_cell_render_cache": 2000, "_row_render_cache": 300, "_line_cache": 300}
        )

    # -- styles -----------------------------------------------------------------------------
    def _style_key(self) -> tuple[object, ...] | None:
        """What the rendered cells depend on in the CSS: the widget's own style and its parts'
        (None while the parts are still being styled)."""
        try:
            parts = tuple(self.get_component_rich_style(name, partial=True) for name in sorted(self.COMPONENT_CLASSES))
        except KeyError:
            return None
        return (self.rich_style, self.styles.border, self.styles.padding, self.styles.scrollbar_size_vertical, parts)

    def notify_style_update(self) -> None:
        """Throw the rendered cells away only when the styles they were drawn with changed.

        Textual re-applies the stylesheet to every widget of a screen each time the screen comes
        back (a view switch, a closed dialog), and ``DataTable`` then drops every cached cell, so a
        plain view switch re-renders the whole table (~50 ms). Unchanged styles keep the cache.
        """
        Widget.notify_style_update(self)  # the widget's own style caches: cheap to rebuild
        key = self._style_key()
        if key is None or key != self._styles_seen:
            self._styles_seen = key
            super().notify_style_update()

    # -- geometry ---------------------------------------------------------------------------
    @property
    def window(self) -> int:
        """Rows held: about two screens (the app's height bounds the table's)."""
        if self._window:
            return self._window
        return max(40, 2 * self.app.size.height + 16)

    def _page(self) -> int:
        """Rows visible at once (before the first layout: a guess from the app's height)."""
        height = self.scrollable_content_region.height - 1
        return max(5, height if height > 1 else self.app.size.height - 6)

    @property
    def position(self) -> int:
        """Query position (0-based) of the highlighted row."""
        return self.first + self.cursor_row

    @property
    def current_key(self) -> str | None:
        """The data key of the highlighted row, or None on an empty table."""
        if not self.row_count or self.cursor_row >= len(self.keys):
            return None
        return self.keys[self.cursor_row]

    # -- loading ----------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.set_columns(self._columns)
        if self.load_on_mount:
            self.reload()

    def _site(self) -> Site:
        return self.app.site  # type: ignore[attr-defined]

    def reload(self, keep_cursor: bool = False) -> None:
        """Load the window again now (after a mark or a refresh): keeps the cursor's query position
        with ``keep_cursor``, else goes back to the first row."""
        pos = self.position if keep_cursor and self.row_count else 0
        offset = self.first if keep_cursor else 0
        self._generation += 1
        rows, offset, ended = self._fetch_window(self._site(), offset, pos)
        self._show(offset, rows, pos - offset, exact=ended)

    def reload_in_background(self, keep_cursor: bool = False) -> None:
        """Run the query (and the count) in a worker thread; the newest request wins.

        For a filter: typing never waits for SQLite. The worker posts the rows back
        (``RowsFetched``); once they are shown, ``TableReloaded`` bubbles to the screen.
        """
        pos = self.position if keep_cursor and self.row_count else 0
        offset = self.first if keep_cursor else 0
        self._generation += 1
        generation = self._generation
        self.fetching = True
        app = self.app

        def work() -> None:
            site = app.open_site()  # type: ignore[attr-defined]
            try:
                rows, start, ended = self._fetch_window(site, offset, pos)
                total = self.count(site) if self.count is not None else None
            finally:
                site.close()
            self.post_message(RowsFetched(generation, rows, start, pos - start, ended, total))

        def run() -> None:
            try:
                work()
            except Exception:
                self.post_message(RowsFetched(generation, None))
                raise

        self.run_worker(run, thread=True, name="paged-reload", group="paged-reload", exit_on_error=False)

    @on(RowsFetched)
    def _rows_fetched(self, event: RowsFetched) -> None:
        if event.generation != self._generation:
            return  # a newer request is on its way
        self.fetching = False
        if event.rows is None:
            return  # the query failed (the worker's error is logged)
        self._show(event.start, event.rows, event.cursor, exact=event.ended)
        if event.total is not None:
            self.total = event.total
        self.post_message(TableReloaded(self))

    def _fetch_window(self, site: Site, offset: int, pos: int) -> tuple[list[Row], int, bool]:
        """(rows, offset, whether they end the query) for the window that starts at ``offset`` and
        holds ``pos``; anchored to the end when the query ends before the window is full."""
        w = self.window
        if not offset <= pos < offset + w:
            offset = max(0, pos - w // 2)
        rows = self.fetch(site, offset, w)
        ended = len(rows) < w
        if ended and offset > 0:  # ran past the end: show the last full window instead
            offset = max(0, offset + len(rows) - w)
            rows = self.fetch(site, offset, w)
        return rows, offset, ended

    def _show(self, offset: int, rows: list[Row], cursor: int, *, exact: bool) -> None:
        """Put ``rows`` in the slots (in place when the slot count is unchanged) and the cursor."""
        self._quiet = True
        try:
            with self.app.batch_update():
                old = self.row_count
                if len(rows) != old:
                    # Fewer or more rows (a filter, the end of the data): rebuild the slots in one go.
                    self.clear()
                    for i, (_, cells) in enumerate(rows):
                        self.add_row(*cells, key=str(i))
                else:
                    for i, (_, cells) in enumerate(rows):
                        slot = str(i)
                        for ck, value in zip(self._colkeys, cells):
                            self.update_cell(slot, ck, value)
                    textual_compat.clear_render_caches(self)  # every cached render is stale now: free it
                self.first = offset
                self.keys = [k for k, _ in rows]
                self.at_end = exact
                if exact:
                    self.total = offset + len(rows)
                if rows:
                    self.move_cursor(row=max(0, min(cursor, len(rows) - 1)), animate=False)
        finally:
            self._quiet = False

    # -- sliding ----------------------------------------------------------------------------
    def _slide(self, delta: int) -> None:
        """Move the window by ``delta`` rows; the cursor and scroll position follow the data."""
        new = max(0, self.first + delta)
        if new == self.first:
            return
        cursor_pos, scroll = self.position, self.scroll_y
        rows, start, ended = self._fetch_window(self._site(), new, cursor_pos)
        moved = start - self.first
        if moved == 0:
            self.at_end = self.at_end or ended
            return
        self._show(start, rows, cursor_pos - start, exact=ended)
        self._quiet = True
        try:
            self.scroll_to(y=max(0, scroll - moved), animate=False, immediate=True)
        finally:
            self._quiet = False

    def _keep_room(self, row: int) -> None:
        """Slide when fewer than a screen of rows is left on either side of ``row``."""
        if self._quiet or not self.row_count:
            return
        page, w = self._page(), self.row_count
        if w - 1 - row < page and not self.at_end:
            self._slide(row - w // 2)
        elif row < page and self.first > 0:
            self._slide(row - w // 2)

    def watch_cursor_coordinate(self, old: Any, new: Any) -> None:
        super().watch_cursor_coordinate(old, new)
        if old != new:
            self._keep_room(new.row)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self._quiet or not self.row_count or old == new:
            return
        page = self._page()
        if new >= self.max_scroll_y - 1 and not self.at_end:  # the mouse wheel, without the cursor
            self._slide(page)
        elif new <= 0 and self.first > 0:
            self._slide(-page)

    def action_scroll_top(self) -> None:
        if self.first > 0:
            self._generation += 1
            rows, start, ended = self._fetch_window(self._site(), 0, 0)
            self._show(start, rows, 0, exact=ended)
        super().action_scroll_top()

    def action_scroll_bottom(self) -> None:
        if not self.at_end:
            total = self.count(self._site()) if self.count is not None else None
            if total is None:  # no count: walk window by window (rare; small tables are at_end)
                while not self.at_end:
                    before = self.first
                    self._slide(self.window)
                    if self.first == before:
                        break
            else:
                self._generation += 1
                rows, start, _ = self._fetch_window(self._site(), max(0, total - self.window), max(0, total - 1))
                self._show(start, rows, len(rows) - 1, exact=True)
        super().action_scroll_bottom()
