"""Pilot tests of the console's main flows on the demo site (real store, real database)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import Checkbox, DataTable, Input, Log, Select, Static

import core.build.jobs as jobs
import core.site.channels as channel_ops
from console.tui.app import DepotConsole
from console.tui.screens.builds import BuildsScreen
from console.tui.screens.channels import ChannelsScreen
from console.tui.screens.compare import CompareScreen
from console.tui.screens.help import HelpScreen
from console.tui.screens.modals import ConfirmModal, PromoteModal
from console.tui.screens.release import ReleaseScreen
from console.tui.screens.releases import ReleasesScreen
from console.tui.textual_compat import notification_messages
from core.site.site import Site

from helpers import settle, write_script

SIZE = (120, 36)


def notes(app) -> list[str]:
    return notification_messages(app)


async def wait_until(pilot, condition, what: str, limit: int = 1200) -> None:
    """A bounded wait for something a real process does (a build): re-check after each short pause."""
    for _ in range(limit):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def filter_applied(pilot) -> None:
    """Wait for a typed filter: its debounce timer, then its query in a worker (bounded, no sleeps)."""
    await wait_until(pilot, lambda: not pilot.app.screen.filter_pending, "the filter to apply", limit=200)
    await settle(pilot)


def build_row(site_dir: Path, build_id: int) -> dict:
    site = Site(site_dir)
    try:
        return jobs.get_build(site, build_id)
    finally:
        site.close()


def log_text(screen) -> str:
    return "\n".join(screen.query_one("#build-log", Log).lines)


async def fill_build_form(
    pilot, script: Path, targets: str = "x86_64", publish: bool = False, promote: str = "", create: bool = False
) -> Any:
    """Open the new-build form and fill it for a command-builder script; the form screen."""
    await pilot.press("n")
    await pilot.pause()
    form = pilot.app.screen
    form.query_one("#source", Input).value = str(script)
    form.query_one("#builder", Select).value = "command"
    form.query_one("#targets", Input).value = targets
    form.query_one("#publish", Checkbox).value = publish
    form.query_one("#promote", Input).value = promote
    form.query_one("#create", Checkbox).value = create
    await pilot.pause()
    return form


async def start_from_form(pilot, script: Path, targets: str = "x86_64", publish: bool = False) -> int:
    """Fill the new-build form for a command-builder script and start it; return the new build's id."""
    app = pilot.app
    screen = app.screen
    before = set(screen.rows)
    await fill_build_form(pilot, script, targets, publish)
    await pilot.click("#yes")
    await settle(pilot)
    await wait_until(pilot, lambda: set(screen.rows) - before, "the new build in the list")
    (bid,) = set(screen.rows) - before
    return bid


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
        assert screen.table.row_count == 6  # typing waits for a pause before it queries
        await filter_applied(pilot)
        assert screen.table.row_count == 2 and screen.table.total == 2
        assert str(app.screen.query_one("#status").render()).startswith(" 2 release(s)   filter 'geant'")
        await pilot.press("escape")
        await filter_applied(pilot)
        assert screen.table.row_count == 6
        await pilot.press("slash", *"zen4", "enter")  # by image; enter applies at once
        await settle(pilot)
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
        assert modal.focused.id == "reason"  # typing the reason comes first; No is the default button
        assert modal.query_one("#channel", Select).value is Select.NULL  # no channel picked for the operator
        modal.query_one("#channel", Select).value = "production"
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
        await pilot.press("enter")  # in the reason: enter moves to No, never confirms
        await pilot.press("enter")  # No is focused: enter says No
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmModal)
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
        shown = {
            b.binding.action
            for b in screen.active_bindings.values()
            if screen.check_action(b.binding.action, ()) is not False
        }
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
        await filter_applied(pilot)
        assert table.row_count == 1
        await pilot.press("enter", "colon", *"nodes", "enter")
        await settle(pilot)
        assert app.current_mode == "nodes"
        assert app.screen.query_one(DataTable).row_count == 50
        assert "arm[01-04]" in str(app.screen.query_one("#no-fit").render())
        from console.tui.app import ConsoleCommands

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


async def test_build_from_the_form_streams_its_log_and_succeeds(demo_site: Path, tmp_path: Path) -> None:
    script = write_script(
        tmp_path / "build.sh", 'echo "hello-from-build on $DEPOT_ARCH"\necho hi > "$DEPOT_OUT/hello"\n'
    )
    app = DepotConsole(demo_site, start="builds")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, BuildsScreen) and screen.table.row_count == 3
        bid = await start_from_form(pilot, script, publish=True)
        assert screen.current_build() == bid  # the new build is selected and its log followed
        await wait_until(pilot, lambda: "hello-from-build on x86_64" in log_text(screen), "the log line")
        await wait_until(pilot, lambda: screen.rows[bid]["status"] == "succeeded", "the build to succeed")
        row = build_row(demo_site, bid)
        assert row["status"] == "succeeded" and row["release"].startswith("sha256:")
        assert str(screen.table.get_cell(str(bid), "status")) == "succeeded"
        cmd = f"console --headless build {script} --builder command --arch x86_64 --publish"
        assert cmd in app.command_log
        assert any(n.startswith(f"build {bid} started") for n in notes(app))


async def test_build_form_promotes_to_a_new_channel_only_when_asked(demo_site: Path, tmp_path: Path) -> None:
    """As ``build --promote C [--create]``: an unknown channel is refused unless "new channel" is
    ticked; ticked, the ≡ command carries ``--create`` and the build creates and promotes it."""
    script = write_script(tmp_path / "build.sh", 'echo hi > "$DEPOT_OUT/hello"\n')
    app = DepotConsole(demo_site, start="builds")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        for create in (False, True):
            before = set(screen.rows)
            form = await fill_build_form(pilot, script, publish=True, promote="canary", create=create)
            shown = str(form.query_one("#command", Static).render())
            assert shown.endswith("--publish --promote canary" + (" --create" if create else ""))
            await pilot.click("#yes")
            await settle(pilot)
            if not create:
                assert any(n.startswith("unknown channel 'canary'") for n in notes(app)), notes(app)
                assert set(screen.rows) == before
        await wait_until(pilot, lambda: set(screen.rows) - before, "the new build in the list")
        (bid,) = set(screen.rows) - before
        await wait_until(pilot, lambda: screen.rows[bid]["status"] == "succeeded", "the build to succeed")
        site = Site(demo_site)
        try:
            rows = {r["channel"]: r for r in channel_ops.channel_status(site)}
            assert rows["canary"]["release"] == build_row(demo_site, bid)["release"]
        finally:
            site.close()


async def test_build_form_errors_use_the_cli_words(demo_site: Path, tmp_path: Path) -> None:
    app = DepotConsole(demo_site, start="builds")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await pilot.pause()
        app.screen.query_one("#source", Input).value = str(tmp_path / "missing.sh")
        app.screen.query_one("#builder", Select).value = "command"
        await pilot.pause()
        await pilot.click("#yes")
        await settle(pilot)
        assert f"build script {tmp_path / 'missing.sh'} does not exist" in notes(app)
        assert len(app.screen.rows) == 3  # nothing queued


async def test_cancel_a_running_build(demo_site: Path, tmp_path: Path) -> None:
    script = write_script(tmp_path / "block.sh", "echo waiting-for-cancel\nexec sleep 3600\n")
    app = DepotConsole(demo_site, start="builds")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        bid = await start_from_form(pilot, script)
        await wait_until(pilot, lambda: "waiting-for-cancel" in log_text(screen), "the marker in the log")
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal) and app.screen.focused.id == "no"
        await pilot.click("#yes")
        await wait_until(pilot, lambda: screen.rows[bid]["status"] == "cancelled", "the build to be cancelled")
        await settle(pilot)
        row = build_row(demo_site, bid)
        assert row["status"] == "cancelled" and row["error"] == "cancelled by the operator"
        assert f"console --headless builds cancel {bid}" in app.command_log
        assert f"build {bid} cancelled: cancelled by the operator" in notes(app)
