"""What every console screen shares: the header and footer, read-only filtering of actions, and
running store/database work in thread workers that post their results back as messages and whose
errors become notifications (same words as the CLI, which prints ``console: <message>``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable

import console.tui.actions as actions
from console.tui import textual_compat
from console.tui.messages import ReloadView, TableReloaded
from core.errors import DepotError

if TYPE_CHECKING:
    from console.tui.app import DepotConsole
    from console.tui.widgets.paged_table import PagedTable
    from core.site.site import Site


def run_site_work(
    node: Any,
    fn: Callable[[Site], Any],
    done: Callable[[Any], Message] | None = None,
    *,
    name: str,
    title: str = "",
    failed: Callable[[Exception], Message] | None = None,
) -> None:
    """Run ``fn(site)`` in a thread worker with a Site of its own; post ``done(result)`` to ``node``.

    ``done`` and ``failed`` build messages (``console.tui.messages``) that ``node`` handles with
    ``@on``; a message for a node that has closed meanwhile is dropped. A ``DepotError`` becomes an
    error notification carrying its message, exactly the line the CLI prints; anything else is a
    bug, also shown (with its type) rather than crashing the console. ``failed(exc)`` is posted
    after either.
    """
    app: DepotConsole = node.app

    def work() -> None:
        site = app.open_site()
        try:
            result = fn(site)
        except DepotError as exc:
            app.call_from_thread(app.notify, str(exc), title=title or "error", severity="error", timeout=8)
            if failed is not None:
                node.post_message(failed(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a bug must not take the console down
            app.call_from_thread(
                app.notify, f"{type(exc).__name__}: {exc}", title="unexpected error", severity="error", timeout=10
            )
            if failed is not None:
                node.post_message(failed(exc))
            return
        finally:
            site.close()
        if done is not None:
            node.post_message(done(result))

    node.run_worker(work, thread=True, name=name, group=name, exit_on_error=False)


class BaseScreen(Screen):
    """A console view: ``SCREEN_ID`` selects its bindings in the action registry."""

    SCREEN_ID = ""
    TITLE_TEXT = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        textual_compat.skip_first_restyle(self)  # a first view switch ~50 ms faster

    @property
    def console(self) -> DepotConsole:
        return self.app  # type: ignore[return-value]

    @property
    def site(self) -> Site:
        return self.console.site

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if not actions.allowed(action, self.console.read_only):
            return False
        if action == "filter":
            from textual.widgets import Input

            if isinstance(self.focused, Input):
                return False  # '/' typed into a box is a '/'
        return True

    def work(
        self,
        fn: Callable[[Site], Any],
        done: Callable[[Any], Message] | None = None,
        *,
        name: str,
        title: str = "",
        failed: Callable[[Exception], Message] | None = None,
    ) -> None:
        """``run_site_work`` for this screen: ``done(result)`` comes back as a message to it."""
        run_site_work(self, fn, done, name=name, title=title, failed=failed)

    def action_refresh(self) -> None:
        """Re-read what the view shows (``r`` where bound, and after a change elsewhere).
        Screens that show nothing that changes keep this default: nothing to do."""

    @on(ReloadView)
    def _reload_requested(self, _: ReloadView) -> None:
        self.action_refresh()

    def headless_context(self) -> dict[str, object]:
        """What the headless commands of this view's actions are filled with now (the release,
        channel, build or nodes under the cursor or marked)."""
        return {}

    def headless_for(self, a: actions.Action) -> str:
        """The exact headless command ``a`` stands for here, now (help, palette)."""
        return a.command(self.SCREEN_ID, **self.headless_context())

    def log_command(self, action_name: str, **context: object) -> str:
        """Record (and return) the headless equivalent of an action just started."""
        cmd = actions.action(action_name).command(self.SCREEN_ID, **context)
        if cmd:
            self.console.command_log.append(cmd)
        return cmd

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    # -- the row detail (enter) -------------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """enter on a table row opens its detail. A view whose rows open something of their own
        (releases: the release) handles ``RowSelected`` first and calls ``prevent_default()``."""
        self.open_row_detail(event.data_table)

    def action_detail(self) -> None:
        """The detail of the focused table's row (or the view's first table's, when the focus
        is elsewhere: the builds log)."""
        from console.tui.widgets.cells import InertTable

        focused = self.focused
        if isinstance(focused, InertTable):
            self.open_row_detail(focused)
            return
        try:
            self.open_row_detail(self.query_one(InertTable))  # the first one
        except NoMatches:
            pass

    def open_row_detail(self, table: DataTable) -> None:
        """Show every column of the highlighted row of ``table``, whole (``RowDetail``)."""
        from console.tui.screens.row_detail import RowDetail
        from console.tui.widgets.cells import InertTable

        fields = table.row_fields() if isinstance(table, InertTable) else []
        if fields:
            self.app.push_screen(RowDetail(self.row_detail_title(fields), fields))

    def row_detail_title(self, fields: list[tuple[str, Text]]) -> str:
        """The row detail's title: the view's name and the row's first column."""
        label, value = fields[0]
        return f"{self.TITLE_TEXT or self.SCREEN_ID}: {label.lower()} {value.plain}"


FILTER_DEBOUNCE_S = 0.15  # typing a word runs one query, not one per key


class PagedView(BaseScreen):
    """A view around one ``PagedTable`` with a ``/`` filter box (``#filter``).

    Typing in the filter only restarts a short timer; when it fires, the table reloads in a worker
    thread, so no key press waits for SQLite. ``enter`` applies the filter at once; ``esc`` clears
    it. Subclasses read ``self.search`` in their ``fetch``/``count`` and override ``filtered()``
    (the filter was applied: update the status line) and ``normalize``.
    """

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.search = ""
        self._typed: str | None = None
        self._filter_timer: Any = None

    @property
    def table(self) -> PagedTable:
        from console.tui.widgets.paged_table import PagedTable

        return self.query_one(PagedTable)

    @property
    def filter_pending(self) -> bool:
        """A filter change is waiting for its timer or its query (tests wait on this)."""
        return self._filter_timer is not None or self.table.fetching

    def normalize(self, text: str) -> str:
        return text.strip()

    @on(TableReloaded)
    def _table_reloaded(self, _: TableReloaded) -> None:
        self.filtered()

    def filtered(self) -> None:
        """The table shows the rows of the current filter (after every background reload)."""

    def action_filter(self) -> None:
        from textual.widgets import Input

        box = self.query_one("#filter", Input)
        box.remove_class("hidden")
        # now, not through ``focus()`` (a callback queued behind the keys already read): what is
        # typed right after ``/`` reaches the box, '/zen4' filters and does not switch to view 4
        self.set_focus(box)

    def on_input_changed(self, event: Any) -> None:
        if event.input.id != "filter":
            return
        self._typed = self.normalize(event.value)
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._filter_timer = self.set_timer(FILTER_DEBOUNCE_S, self.apply_filter, name="filter-debounce")

    def apply_filter(self) -> None:
        """Run the typed filter now (the timer, or ``enter``)."""
        if self._filter_timer is not None:
            self._filter_timer.stop()
            self._filter_timer = None
        if self._typed is None or self._typed == self.search:
            self._typed = None
            return
        self.search, self._typed = self._typed, None
        self.table.reload_in_background()  # TableReloaded: filtered()

    def on_input_submitted(self, event: Any) -> None:
        if event.input.id == "filter":
            self.apply_filter()
            self.table.focus()

    def action_back(self) -> None:
        from textual.widgets import Input

        box = self.query_one("#filter", Input)
        if self.search or box.has_focus or self._typed:
            box.value = ""  # posts Changed: the empty filter is applied through the timer
            self._typed = ""
            self.apply_filter()
            box.add_class("hidden")
            self.table.focus()
            return
        super().action_back()
