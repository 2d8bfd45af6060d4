"""Pilot tests of the console's main flows on the demo site (real store, real database)."""
from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Input, Select

from console.app import DepotConsole
from console.screens.channels import ChannelsScreen
from console.screens.compare import CompareScreen
from console.screens.help import HelpScreen
from console.screens.modals import ConfirmModal, PromoteModal
from console.screens.release import ReleaseScreen
from console.screens.releases import ReleasesScreen
from core import channels as channel_ops
from core.site import Site
from demo_site import demo_master, demo_site  # noqa: F401 - fixtures

SIZE = (120, 36)


async def settle(pilot) -> None:
    """Let workers finish and their results land on screen (no sleeps)."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def notes(app) -> list[str]:
    return [n.message for n in app._notifications]


def production(site_dir: Path) -> dict:
    site = Site(site_dir)
    try:
        return next(r for r in channel_ops.channel_status(site) if r["channel"] == "production")
    finally:
        site.close()


async def test_filter_narrows_and_escape_clears(demo_site: Path) -> None:
    app = DepotConsole(demo_site)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReleasesScreen)
        assert screen.table.row_count == 6
        await pilot.press("slash", *"geant")
        assert screen.table.row_count == 2
        await pilot.press("escape")
        assert screen.table.row_count == 6
        await pilot.press("slash", *"zen4")  # by image
        assert screen.table.row_count == 3


async def test_drill_down_shows_images_packages_and_lazy_tree(demo_site: Path) -> None:
    app = DepotConsole(demo_site)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReleaseScreen)
        assert screen.query_one("#images", DataTable).row_count == 3
        assert screen.query_one("#packages", DataTable).row_count > 5
        tree = screen.query_one("#files")
        image = tree.root.children[0]
        assert len(image.children) == 0  # nothing read before it is opened
        image.expand()
        await settle(pilot)
        names = [str(c.label) for c in image.children]
        assert "compiled/" in names and "registries/" in names
        await pilot.press("escape")
        assert isinstance(app.screen, ReleasesScreen)


async def test_compare_two_marked_releases(demo_site: Path) -> None:
    app = DepotConsole(demo_site)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("space", "down", "down", "space", "c")  # 2026.11-2 vs 2026.11-1
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        d = screen.diff
        assert d is not None and d.a.label == "2026.11-1" and d.b.label == "2026.11-2"
        assert len(d.packages_changed) == 3
        files = screen.query_one("#file-diff", DataTable)
        total = files.row_count
        assert total == sum(len(i.changes) for i in d.images) > 0
        first = d.images[0].changes[0]
        assert abs(first.delta) == max(abs(c.delta) for i in d.images for c in i.changes)  # biggest first
        await pilot.click("#filter")
        await pilot.press(*"zen4")
        assert 0 < files.row_count < total


async def test_promote_through_the_modal(demo_site: Path) -> None:
    app = DepotConsole(demo_site)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        top = app.screen.table.current_key
        await pilot.press("p")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, PromoteModal)
        assert modal.focused.id == "no"  # the default is No
        assert modal.query_one("#channel", Select).value == "production"
        await pilot.click("#reason")
        await pilot.press(*"fixed")
        await pilot.click("#yes")
        await settle(pilot)
        row = production(demo_site)
        assert row["release"] == top and row["version"] == 5 and row["reason"] == "fixed"
        assert any("production: promoted" in n for n in notes(app))
        assert "console --headless promote 653d5cfc1720 --channel production --reason fixed" in app.command_log


async def test_rollback_confirm_and_cancel(demo_site: Path) -> None:
    app = DepotConsole(demo_site, start="channels")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ChannelsScreen)
        before = production(demo_site)
        await pilot.press("b")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)
        text = " ".join(str(s.render()) for s in app.screen.query(".dialog-line"))
        assert "from  3baaed010bdb" in text and "to  b16bd2d2d493" in text
        await pilot.press("escape")  # cancel
        await settle(pilot)
        assert production(demo_site)["version"] == before["version"]
        assert any("cancelled: nothing changed" in n for n in notes(app))
        await pilot.press("b")
        await settle(pilot)
        await pilot.press("enter")  # No is focused: enter says No
        await settle(pilot)
        assert production(demo_site)["version"] == before["version"]
        await pilot.press("b")
        await settle(pilot)
        await pilot.click("#yes")
        await settle(pilot)
        after = production(demo_site)
        assert after["version"] == before["version"] + 1 and after["action"] == "rollback"
        assert after["release"].startswith("sha256:b16bd2d2d493")


async def test_conflict_is_shown_not_swallowed(demo_site: Path) -> None:
    app = DepotConsole(demo_site, start="channels")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("b")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)
        other = Site(demo_site)  # someone else moves the channel meanwhile
        channel_ops.promote(other, "653d5cfc1720", "production", "racing")
        other.close()
        await pilot.click("#yes")
        await settle(pilot)
        assert any(n.startswith("channel moved meanwhile: production is at version 5") for n in notes(app))
        assert production(demo_site)["reason"] == "racing"


async def test_read_only_hides_every_state_changing_action(demo_site: Path) -> None:
    app = DepotConsole(demo_site, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.check_action("promote", ()) is False
        shown = {b.binding.action for b in screen.active_bindings.values()
                 if screen.check_action(b.binding.action, ()) is not False}
        assert "promote" not in shown and "filter" in shown
        await pilot.press("p")
        assert not isinstance(app.screen, PromoteModal)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        listed = app.screen.listed
        assert "Promote" not in listed and "Roll back" not in listed and "Fleet check" not in listed
        assert "Compare" in listed and "Filter" in listed
        await pilot.press("escape", "2")
        await settle(pilot)
        await pilot.press("b")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmModal)


async def test_worker_error_becomes_a_notification(demo_site: Path) -> None:
    app = DepotConsole(demo_site)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        rid = app.screen.table.current_key
        (demo_site / "store" / "releases" / f"{rid[7:]}.json").unlink()
        await pilot.press("enter")
        await settle(pilot)
        assert f"release {rid} not found in store" in notes(app)


async def test_jump_views_and_palette_commands(demo_site: Path) -> None:
    app = DepotConsole(demo_site)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("colon", *"aud", "enter")
        await settle(pilot)
        assert app.current_mode == "audit"
        table = app.screen.query_one(DataTable)
        assert table.row_count == 15
        await pilot.press("slash", *"rollback")
        assert table.row_count == 1
        await pilot.press("enter", "colon", *"nodes", "enter")
        await settle(pilot)
        assert app.current_mode == "nodes"
        assert app.screen.query_one(DataTable).row_count == 50
        assert "arm[01-04]" in str(app.screen.query_one("#no-fit").render())
        from console.app import ConsoleCommands

        app.switch_mode("releases")
        await settle(pilot)
        provider = ConsoleCommands(app.screen)
        titles = [t for t, _, _ in provider._commands()]
        assert "Promote" in titles and any(t.startswith("Compare 653d5cfc1720 with") for t in titles)


async def test_fleet_check_runs_live_and_records(demo_site: Path) -> None:
    app = DepotConsole(demo_site, start="nodes")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await pilot.pause()
        box = app.screen.query_one("#nodeset", Input)
        box.value = "nosuch-[1-2].invalid"
        await pilot.click("#yes")
        await settle(pilot)
        screen = app.screen
        assert sorted(screen.results) == ["nosuch-1.invalid", "nosuch-2.invalid"]
        assert all(not c.ok for c in screen.results.values())
        await settle(pilot)
        site = Site(demo_site)
        row = site.state.db.execute("select verb, target, outcome from audit order by id desc limit 1").fetchone()
        site.close()
        assert row == ("fleet check", "nosuch-[1-2].invalid", "failed: 2 of 2 nodes")
