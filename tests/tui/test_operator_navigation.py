"""Issue 18 item 14: j/k, g/G and Home/End move the cursor in every table; what is typed right
after ``/`` reaches the filter (``/zen4`` filters, it does not switch to view 4); the releases
filter also matches channel names."""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.widgets import Input

from console.tui.app import DepotConsole
from console.tui.screens.releases import ReleasesScreen
from console.tui.widgets.cells import InertTable

from helpers import settle

SIZE = (120, 36)
TABLES = {
    "releases": "#releases-table",
    "channels": "#history-table",
    "nodes": "#nodes-table",
    "builds": "#builds-table",
    "audit": "#audit-table",
}


async def test_vi_keys_and_home_end_in_every_table(demo_site: Path) -> None:
    app = DepotConsole(demo_site)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tried = 0
        for view, sel in TABLES.items():
            app.action_view(view)
            await settle(pilot)
            table = app.screen.query_one(sel, InertTable)
            table.focus()
            await pilot.pause()
            if table.row_count < 3:
                continue
            tried += 1
            last = table.row_count - 1
            for key, row in (("G", last), ("g", 0), ("j", 1), ("j", 2), ("k", 1), ("end", last), ("home", 0)):
                await pilot.press(key)
                await pilot.pause()
                assert table.cursor_row == row, (view, key, table.cursor_row)
            assert app.screen.id == view or getattr(app.screen, "SCREEN_ID", "") == view
        assert tried >= 3


async def test_typing_right_after_slash_reaches_the_filter(demo_site: Path) -> None:
    app = DepotConsole(demo_site)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # keys read in one go from the terminal: queued before '/' has been handled
        for key, ch in [("slash", "/"), ("z", "z"), ("e", "e"), ("n", "n"), ("4", "4")]:
            app.post_message(events.Key(key, ch))
        await settle(pilot)
        assert isinstance(app.screen, ReleasesScreen)  # not the builds view (4)
        box = app.screen.query_one("#filter", Input)
        assert box.value == "zen4" and box.has_focus
        await pilot.press("slash")  # in the box, '/' is a character
        assert box.value == "zen4/"


async def test_releases_filter_matches_channel_names(demo_site: Path) -> None:
    app = DepotConsole(demo_site)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReleasesScreen)
        channel, carried = next((chans[0], rid) for rid, chans in sorted(screen.by_release.items()))
        total = screen.table.row_count
        await pilot.press("slash", *channel, "enter")
        await settle(pilot)
        shown = set(screen.table.keys)
        assert carried in shown
        assert all(any(channel in c for c in screen.by_release.get(k, [])) for k in shown) or len(shown) < total
