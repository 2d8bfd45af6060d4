"""Issue 18 items 12 (tables) and 13: tables give their width to the columns an operator needs
most, use all of it at 120 and 200 columns, keep every value whole (cut only where drawn, so a
wider terminal shows more), and enter on a row of any table opens its detail (k9s's describe):
every column, whole. Releases keep enter = open the release; the release's file tree keeps
enter = open a directory."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import Static, Tree

import console.tui.actions as actions
import console.tui.screens.fleetcheck as fleetcheck
from console.tui.app import DepotConsole
from console.tui.screens.help import HelpScreen
from console.tui.screens.release import ReleaseScreen
from console.tui.screens.row_detail import RowDetail
from console.tui.widgets.cells import InertTable, cell, cell_width
from console.tui.widgets.columns import Col, layout
from console.tui.widgets.paged_table import PagedTable
from core.fleet.check import NodeCheck
from core.site.site import Site

from helpers import settle

# (view, table, the columns an operator needs there, which must be shown whole at 80x24)
IMPORTANT = [
    ("releases", "#releases-table", ["ID", "NAME", "CHANNELS", "SIGNATURE"]),
    ("channels", "#channels-table", ["CHANNEL", "RELEASE", "EXPIRES IN", "STATUS"]),
    ("channels", "#history-table", ["VER", "ACTION", "STATUS"]),
    ("nodes", "#nodes-table", ["NODE", "ARCH", "PRODUCTION", "TESTING", "STATUS"]),
    ("builds", "#builds-table", ["ID", "STATUS", "NAME"]),
    ("audit", "#audit-table", ["AGO", "VERB", "OUTCOME"]),
    ("compare", "#file-diff", ["CHANGE", "Δ"]),
    ("compare", "#image-diff", ["IMAGE", "STATE", "Δ BYTES"]),
]
# every table of every view, for enter and for 200 columns
TABLES = [
    ("releases", "#releases-table"),
    ("release", "#images"),
    ("release", "#packages"),
    ("compare", "#image-diff"),
    ("compare", "#file-diff"),
    ("channels", "#channels-table"),
    ("channels", "#history-table"),
    ("nodes", "#nodes-table"),
    ("builds", "#builds-table"),
    ("audit", "#audit-table"),
]
LONG_OUTCOME = "refused: host key does not match known_hosts (remote host identification has changed)"


# -- the layout rules ---------------------------------------------------------------------------
def test_the_important_columns_get_their_width_first_and_the_least_important_give_way() -> None:
    cols = [Col("A", 4, priority=0), Col("B", 4, priority=2), Col("C", 4, priority=1)]
    # 26 cells, 2 of padding per column shown: A and C whole (12 + 12), no room for B's 4 + 2
    assert layout(cols, [10, 10, 10], 26, 2) == [10, 0, 10]
    # room for B's minimum, not its whole value: B is cut (drawn with an ellipsis)
    assert layout(cols, [10, 10, 10], 31, 2) == [10, 5, 10]
    # everything fits: every column whole
    assert layout(cols, [10, 10, 10], 36, 2) == [10, 10, 10]


def test_spare_width_goes_to_the_flexible_columns_and_fills_the_table() -> None:
    cols = [Col("ID", 4, priority=0, max=12), Col("NAME", 4, priority=1, flex=1), Col("SIZE", 4, priority=2)]
    widths = layout(cols, [12, 8, 6], 120, 2)
    assert widths[0] == 12 and widths[2] == 6  # not flexible: as wide as their widest value
    assert sum(widths) + 2 * len(cols) == 120  # the name takes the rest: the whole width is used


def test_a_long_valued_column_claims_only_so_much_before_the_less_important_ones() -> None:
    reason = Col("REASON", 12, priority=1, flex=1, claim=20)
    cols = [Col("VER", 3, priority=0), reason, Col("ISSUED", 8, priority=2)]
    widths = layout(cols, [3, 200, 11], 60, 2)
    assert widths[0] == 3 and widths[2] == 11  # ISSUED shown whole beside a 200-cell reason
    assert widths[1] == 60 - 6 - 3 - 11  # and the reason has all the rest
    wide = layout(cols, [3, 30, 11], 200, 2)
    assert wide[1] >= 30  # with room, the reason is whole


# -- pilot helpers ------------------------------------------------------------------------------
async def open_view(app: DepotConsole, pilot: Any, view: str) -> None:
    """Show ``view``: release and compare are reached from the releases (enter; space, down, c)."""
    while len(app.screen_stack) > 1:
        app.pop_screen()
        await settle(pilot)
    if view in ("release", "compare"):
        app.action_view("releases")
        await settle(pilot)
        app.screen.query_one("#releases-table", InertTable).focus()
        await pilot.press(*(("enter",) if view == "release" else ("space", "down", "c")))
        if view == "compare":
            await pilot.press("home", "space")  # unmark, for the next visit
    else:
        app.action_view(view)
    await settle(pilot)


def widest(table: InertTable, key: Any) -> int:
    """The width of the widest value (or the label) of a column."""
    label = table.columns[key].label
    return max([label.cell_len, *(cell_width(v) for v in table.get_column(key))])


def regions(table: InertTable) -> dict[str, tuple[int, int]]:
    """Column label -> (x, width) inside the table, of every column shown."""
    out, x = {}, 0
    for col in table.ordered_columns:
        w = col.get_render_width(table)
        if w:
            out[col.label.plain] = (x + table.cell_padding, col.width)
        x += w
    return out


def used_width(table: InertTable) -> int:
    """Cells the table's columns take as drawn (hidden columns take none)."""
    return sum(col.get_render_width(table) for col in table.ordered_columns)


def drawn(table: InertTable) -> list[str]:
    """The table's lines as drawn: the header and the rows in view."""
    return [table.render_line(y).text for y in range(min(table.size.height, table.row_count + 1))]


# -- 80x24: what an operator needs most is whole -------------------------------------------------
async def test_at_80x24_the_important_columns_are_shown_whole(demo_site: Path) -> None:
    app = DepotConsole(demo_site)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for view, sel, labels in IMPORTANT:
            await open_view(app, pilot, view)
            table = app.screen.query_one(sel, InertTable)
            assert table.row_count, (view, sel)
            room = table.scrollable_content_region.width
            assert table.region.right <= 80
            shown = regions(table)
            header = drawn(table)[0]
            for label in labels:
                assert label in shown, (view, sel, label, list(shown))
                x, width = shown[label]
                key = next(c.key for c in table.ordered_columns if c.label.plain == label)
                assert width >= widest(table, key), (view, sel, label, width)  # whole, no ellipsis
                assert x + width <= room, (view, sel, label)  # inside the table: no sideways scrolling
                assert header[x : x + len(label)] == label, (view, sel, header)
            assert table.virtual_size.width <= room  # nothing to scroll to
            assert table.max_scroll_x == 0


async def test_resizing_wider_shows_what_was_hidden_and_cut(demo_site: Path) -> None:
    app = DepotConsole(demo_site, start="audit")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#audit-table", InertTable)
        assert table.column_widths["time"] == 0  # the timestamp gives way to its age at 80
        first_time = table.get_row_at(0)[0].plain
        assert not any(first_time in line for line in drawn(table))
        await pilot.resize_terminal(200, 50)
        await settle(pilot)
        assert table.column_widths["time"] == len(first_time)
        assert first_time in drawn(table)[1]


# -- 120 and 200 columns: the whole width, nothing cut ------------------------------------------
def add_long_audit_rows(site_dir: Path) -> None:
    """Rows whose values were cut at 200 columns before (``build-finis``, ``10 minutes a``)."""
    site = Site(site_dir)
    try:
        ten_minutes_ago = "2026-11-21T11:50:00Z"  # DEMO_NOW - 10 min
        site.state.audit_log.insert("ci-builder@build01", "build-finished", "build 3", "ok", time=ten_minutes_ago)
        site.state.audit_log.insert("alice@ops", "fleet-check", "node[001-050]", LONG_OUTCOME, time=ten_minutes_ago)
    finally:
        site.close()


async def test_at_200_columns_no_value_is_cut_and_every_table_uses_the_width(demo_site: Path) -> None:
    add_long_audit_rows(demo_site)
    app = DepotConsole(demo_site)
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot)
        for view, sel in TABLES:
            await open_view(app, pilot, view)
            table = app.screen.query_one(sel, InertTable)
            assert table.row_count, (view, sel)
            for col in table.ordered_columns:
                assert col.width >= widest(table, col.key), (view, sel, col.label.plain, col.width)
            lines = drawn(table)
            assert not any("…" in line for line in lines), (view, sel, lines)
            assert used_width(table) == table.scrollable_content_region.width, (view, sel)  # every cell of it
        await open_view(app, pilot, "audit")
        lines = drawn(app.screen.query_one("#audit-table", InertTable))
        assert any("build-finished" in line and "10 minutes ago" in line for line in lines), lines
        assert any(LONG_OUTCOME in line for line in lines), lines


async def test_at_120_columns_every_table_uses_the_whole_width(demo_site: Path) -> None:
    app = DepotConsole(demo_site)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        for view, sel in TABLES:
            await open_view(app, pilot, view)
            table = app.screen.query_one(sel, InertTable)
            used = used_width(table)
            assert used == table.scrollable_content_region.width, (view, sel, used)
            assert table.max_scroll_x == 0


# -- enter: the row detail ----------------------------------------------------------------------
def detail_text(detail: RowDetail) -> str:
    console = Console(width=400, record=True, file=io.StringIO())
    console.print(detail.query_one("#row-detail-fields", Static).content)
    return console.export_text()


async def test_enter_opens_the_row_detail_in_every_table(demo_site: Path) -> None:
    add_long_audit_rows(demo_site)
    app = DepotConsole(demo_site)
    opened = 0
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for n, (view, sel) in enumerate(TABLES):
            if view == "releases":
                continue  # enter opens the release (below)
            await open_view(app, pilot, view)
            screen = app.screen
            table = screen.query_one(sel, InertTable)
            table.focus()
            await pilot.press("end")  # the last row, whatever the table
            await pilot.pause()
            row = table.get_row_at(table.cursor_row)
            labels = [c.label.plain for c in table.ordered_columns]
            await pilot.press("enter")
            await pilot.pause()
            detail = app.screen
            assert isinstance(detail, RowDetail), (view, sel, type(detail).__name__)
            # every column, hidden ones too, with its whole value
            assert [label for label, _ in detail.fields] == labels
            assert [value.plain for _, value in detail.fields] == [v.plain for v in row]
            text = detail_text(detail)
            for label, value in detail.fields:
                assert label in text and value.plain in text, (view, sel, label, value.plain)
            await pilot.press(("escape", "enter", "q")[n % 3])  # each closes it
            await pilot.pause()
            assert app.screen is screen and app.is_running, (view, sel)
            assert table.has_focus
            opened += 1
        assert opened == len(TABLES) - 1

        # the audit row cut at 80 columns reads whole in its detail, wrapped
        await open_view(app, pilot, "audit")
        table = app.screen.query_one("#audit-table", InertTable)
        table.focus()
        table.move_cursor(row=[r[5].plain for r in map(table.get_row_at, range(table.row_count))].index(LONG_OUTCOME))
        assert not any(LONG_OUTCOME in line for line in drawn(table))
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, RowDetail)
        assert dict(app.screen.fields)["OUTCOME"].plain == LONG_OUTCOME
        assert dict(app.screen.fields)["TIME"].plain == "2026-11-21T11:50:00Z"  # a hidden column
        await pilot.press("escape")
        await pilot.pause()

        # releases: enter still opens the release; its file tree still opens a directory
        await open_view(app, pilot, "releases")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ReleaseScreen)
        tree = app.screen.query_one("#files", Tree)
        tree.focus()
        await pilot.press("down", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ReleaseScreen)
        assert tree.cursor_node is not None and tree.cursor_node.is_expanded

        # the help lists enter = row detail where it applies
        app.action_help()
        await settle(pilot)
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        assert "Row detail" in help_screen.listed
        assert actions.action("detail").applies_to("audit") and not actions.action("detail").applies_to("releases")


async def test_enter_on_a_fleet_check_row_shows_its_whole_detail(demo_site: Path, monkeypatch) -> None:
    detail = "host key does not match known_hosts (remote host identification has changed): " + "x" * 60

    async def fake_check(nodes, options, targets, *, on_start=None, on_result=None):
        checks = [NodeCheck(n, "host-key-mismatch", detail, seconds=0.4) for n in nodes]
        for c in checks:
            if on_result is not None:
                on_result(c)
        return checks

    monkeypatch.setattr(fleetcheck, "check_fleet", fake_check)
    app = DepotConsole(demo_site, start="nodes")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.push_screen(fleetcheck.FleetCheckScreen("node[001-003]", ["node001", "node002", "node003"], False, ""))
        await settle(pilot)
        screen = app.screen
        table = screen.query_one("#fleet-table", InertTable)
        assert table.row_count == 3
        shown = regions(table)
        assert shown["STATUS"][1] == len("host-key-mismatch")  # whole at 80
        assert "DETAIL" in shown
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, RowDetail)
        fields = dict(app.screen.fields)
        assert fields["NODE"].plain == "node002" and fields["DETAIL"].plain == detail
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        await pilot.resize_terminal(200, 50)
        await settle(pilot)
        assert not any("…" in line for line in drawn(table))
        assert any(detail in line for line in drawn(table))


# -- a paged table keeps whole values as its window slides ---------------------------------------
class PagedApp(App[None]):
    """One PagedTable over 500 generated rows, a window of 40: sliding updates cells in place."""

    def __init__(self) -> None:
        super().__init__()
        self.site = None

    def compose(self) -> ComposeResult:
        cols = [Col("N", 3, priority=0), Col("TEXT", 6, priority=1, flex=1)]
        yield PagedTable(cols, self.fetch, lambda site: 500, window=40, id="paged")

    @staticmethod
    def value(i: int) -> str:
        return f"row {i} " + "long " * (i // 100)  # rows further down are longer

    def fetch(self, site: Any, offset: int, limit: int) -> list[tuple[str, list[Text]]]:
        return [(str(i), [cell(str(i)), cell(self.value(i))]) for i in range(offset, min(500, offset + limit))]


async def test_a_paged_table_keeps_whole_values_as_its_window_slides() -> None:
    app = PagedApp()
    async with app.run_test(size=(200, 30)) as pilot:
        await pilot.pause()
        table = app.query_one(PagedTable)
        table.focus()
        for _ in range(130):
            await pilot.press("j")
        await pilot.pause()
        assert table.first > 0  # the window slid
        pos = table.position
        assert table.get_row_at(table.cursor_row)[1].plain == PagedApp.value(pos)  # whole, after the slide
        assert table.column_widths["text"] >= len(PagedApp.value(pos))  # measured as it came in
        assert not any("…" in line for line in drawn(table))
