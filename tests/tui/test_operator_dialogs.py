"""Issue 18 items 12 and 15: every dialog fits 80x24 (and 120x36), its buttons whole on screen;
the focus starts in the reason; Promote picks no channel by itself; the ``≡`` line is the exact,
shell-quoted command (the reason as typed) and the command that is then run; Renew's reason is
``refresh --reason``; the fleet-check form's ``≡`` command checks with the very options the TUI
check runs with."""

from __future__ import annotations

import asyncio
import io
import json
import shlex
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from textual.geometry import Region
from textual.widgets import Button, Checkbox, Input, Select, Static

import console.tui.screens.fleetcheck as tui_fleetcheck
import core.fleet.check as fleetcheck
import core.site.channels as channel_ops
from console.cli import main
from console.tui.app import DepotConsole
from console.tui.screens.modals import ConfirmModal, FleetCheckModal, PromoteModal
from console.tui.textual_compat import notification_messages
from core.site.site import Site

from helpers import settle

SIZES = [(80, 24), (120, 36)]
# (dialog, the view it opens on, its key)
DIALOGS = [
    ("promote", "releases", "p"),
    ("rollback", "channels", "b"),
    ("renew", "channels", "e"),
    ("fleet check", "nodes", "f"),
    ("new build", "builds", "n"),
    ("jump", "releases", "colon"),
]


def channel_row(site_dir: Path, channel: str = "production") -> dict:
    site = Site(site_dir)
    try:
        return next(r for r in channel_ops.channel_status(site) if r["channel"] == channel)
    finally:
        site.close()


def last_audit(site_dir: Path) -> dict:
    site = Site(site_dir)
    try:
        return site.state.audit_rows(limit=1)[0]
    finally:
        site.close()


def command_line(app: DepotConsole) -> str:
    """The dialog's ≡ line, without the ≡."""
    text = str(app.screen.query_one("#command", Static).render())
    assert text.startswith("≡ "), text
    return " ".join(text[2:].split())  # a long line wraps where it is shown


def assert_fits(app: DepotConsole, what: str) -> None:
    """The dialog, its text and its buttons lie inside the screen; the text inside the dialog."""
    width, height = app.size
    screen = Region(0, 0, width, height)
    dialog = app.screen.query_one(".dialog")
    assert screen.contains_region(dialog.region), (what, dialog.region, app.size)
    for button in app.screen.query(Button):
        assert dialog.region.contains_region(button.region), (what, button.id, button.region, dialog.region)
        assert button.region.height == 3 and button.region.width >= len(str(button.label)), (what, button.id)
    for part in app.screen.query(".dialog-title, .dialog-line, .headless"):
        if part.display:
            assert part.region.right <= dialog.region.right, (what, part.id, part.region)


async def open_dialog(pilot: Any, view: str, key: str) -> None:
    app = pilot.app
    app.action_view(view)
    await settle(pilot)
    await pilot.press(key)
    await settle(pilot)


async def open_promote(pilot: Any, channel: str | None = None) -> Any:
    """Open the Promote dialog on the releases view (and pick ``channel``); the dialog."""
    await pilot.press("p")
    await settle(pilot)
    if channel is not None:
        pilot.app.screen.query_one("#channel", Select).value = channel
        await settle(pilot)
    return pilot.app.screen


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_every_dialog_fits_the_terminal(demo_site: Path, size: tuple[int, int]) -> None:
    app = DepotConsole(demo_site)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        for what, view, key in DIALOGS:
            await open_dialog(pilot, view, key)
            assert app.screen.query(".dialog"), what
            assert_fits(app, what)
            if what == "fleet check":  # the Slurm fields instead of ssh's
                app.screen.query_one("#transport", Select).value = "slurm"
                await settle(pilot)
                assert not app.screen.query_one("#slurm-where").has_class("hidden")
                assert_fits(app, "fleet check via slurm")
            await pilot.press("escape")
            await settle(pilot)
            assert not app.screen.query(".dialog"), what


async def test_a_tall_promote_dialog_keeps_its_buttons_in_view_at_80x24(demo_site: Path) -> None:
    with (demo_site / "console.toml").open("a") as fh:
        fh.write('\n[channels.production]\nrequire = ["soak"]\nsoak_hours = 100000\noverride = ["soak"]\n')
    app = DepotConsole(demo_site)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_promote(pilot, "production")
        assert not app.screen.query_one("#override", Input).has_class("hidden")  # the policy lines, the override
        assert_fits(app, "promote with unmet checks")


async def test_focus_starts_in_the_reason(demo_site: Path) -> None:
    app = DepotConsole(demo_site)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for what, view, key in DIALOGS[:3]:  # promote, rollback, renew: the dialogs that ask why
            await open_dialog(pilot, view, key)
            assert app.screen.focused is not None and app.screen.focused.id == "reason", what
            await pilot.press(*"why")
            assert app.screen.query_one("#reason", Input).value == "why", what
            await pilot.press("enter")  # enter in the reason goes to No; it never confirms
            assert app.screen.focused.id == "no", what
            await pilot.press("escape")
            await settle(pilot)


async def test_promote_picks_no_channel_and_refuses_until_one_is(demo_site: Path) -> None:
    before = channel_row(demo_site)
    app = DepotConsole(demo_site)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        modal = await open_promote(pilot)
        assert isinstance(modal, PromoteModal)
        assert modal.query_one("#channel", Select).value is Select.NULL and modal.channel == ""
        assert command_line(app) == "console --headless promote 653d5cfc1720 --channel CHANNEL"
        await pilot.click("#yes")
        await settle(pilot)
        assert app.screen is modal
        assert "pick the channel to promote to" in notification_messages(app)
        assert channel_row(demo_site)["version"] == before["version"]


REASON = """it's "fixed" now; rm -rf $HOME"""


async def open_confirm(app: DepotConsole, pilot: Any, key: str, command: str) -> None:
    """Press ``key`` on the open view: a confirm dialog whose ≡ line is ``command`` (no reason yet)."""
    await pilot.press(key)
    await settle(pilot)
    assert isinstance(app.screen, ConfirmModal)
    assert command_line(app) == command


async def type_reason_and_confirm(app: DepotConsole, pilot: Any, reason: str) -> str:
    """Type ``reason`` into the open dialog and confirm it; return its ≡ line as typed, after
    checking that it is exactly the command the console logged for what it ran."""
    await pilot.press(*reason)
    cmd = command_line(app)
    await pilot.click("#yes")
    await settle(pilot)
    assert app.command_log[-1] == cmd
    return cmd


async def test_promote_command_line_shows_the_reason_as_typed_and_is_what_runs(demo_site: Path) -> None:
    app = DepotConsole(demo_site)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_promote(pilot, "production")
        cmd = await type_reason_and_confirm(app, pilot, REASON)
        assert cmd == f"console --headless promote 653d5cfc1720 --channel production --reason {shlex.quote(REASON)}"
        assert shlex.split(cmd)[-1] == REASON
        assert channel_row(demo_site)["reason"] == REASON


async def test_rollback_command_line_shows_the_reason_as_typed(demo_site: Path) -> None:
    app = DepotConsole(demo_site, start="channels")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_confirm(app, pilot, "b", "console --headless rollback --channel production --to b16bd2d2d493")
        cmd = await type_reason_and_confirm(app, pilot, REASON)
        assert (
            cmd == f"console --headless rollback --channel production --to b16bd2d2d493 --reason {shlex.quote(REASON)}"
        )
        row = channel_row(demo_site)
        assert row["action"] == "rollback" and row["reason"] == REASON


def run_cli(site: Path, cmd: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main([*shlex.split(cmd)[1:], "--site", str(site)])
    return rc, out.getvalue() + err.getvalue()


async def test_renew_takes_the_reason_refresh_takes(demo_site: Path) -> None:
    before = channel_row(demo_site)
    app = DepotConsole(demo_site, start="channels")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_confirm(app, pilot, "e", "console --headless refresh --channel production")
        cmd = await type_reason_and_confirm(app, pilot, "cron was down")
        assert cmd == "console --headless refresh --channel production --reason 'cron was down'"
    row = channel_row(demo_site)
    assert row["version"] == before["version"] + 1 and row["action"] == "refresh" and row["reason"] == "cron was down"
    audit = last_audit(demo_site)
    assert audit["verb"] == "refresh" and json.loads(audit["detail"])["reason"] == "cron was down"
    rc, out = await asyncio.to_thread(
        run_cli, demo_site, cmd.replace("cron was down", "by hand")
    )  # the same command, headless
    assert rc == 0, out
    row = channel_row(demo_site)
    assert row["version"] == before["version"] + 2 and row["reason"] == "by hand"
    assert json.loads(last_audit(demo_site)["detail"])["reason"] == "by hand"


async def test_the_fleet_check_command_checks_with_the_options_the_tui_check_runs_with(
    demo_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ssh_config = tmp_path / "my ssh" / "config"
    ssh_config.parent.mkdir()
    ssh_config.write_text("Host *\n  BatchMode yes\n")
    seen: list[tuple[list[str], Any]] = []

    async def fake_check(nodes, options, targets, *, on_start=None, on_result=None):  # noqa: ANN001, ANN202
        seen.append((list(nodes), options))
        return []

    monkeypatch.setattr(tui_fleetcheck, "check_fleet", fake_check)
    monkeypatch.setattr(fleetcheck, "check_fleet", fake_check)
    app = DepotConsole(demo_site, start="nodes")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, FleetCheckModal)
        assert form.focused is not None and form.focused.id == "nodeset"
        nodeset = form.query_one("#nodeset", Input).value
        assert nodeset and command_line(app) == f"console --headless fleet check {shlex.quote(nodeset)}"
        form.query_one("#nodeset", Input).value = "arm[01-02]"
        form.query_one("#hydrate", Checkbox).value = True
        form.query_one("#smoke", Checkbox).value = True
        form.query_one("#channel", Select).value = "testing"
        form.query_one("#ssh-config", Input).value = str(ssh_config)
        form.query_one("#timeout", Input).value = "7.5"
        await settle(pilot)
        cmd = command_line(app)
        assert cmd == (
            "console --headless fleet check 'arm[01-02]' --hydrate --smoke --channel testing "
            f"--ssh-config {shlex.quote(str(ssh_config))} --timeout 7.5"
        )
        assert_fits(app, "fleet check, filled in")
        await pilot.click("#yes")
        await settle(pilot)
        assert app.command_log[-1] == cmd
    assert len(seen) == 1
    tui_nodes, tui_options = seen[0]
    assert tui_nodes == ["arm01", "arm02"]
    assert (tui_options.hydrate, tui_options.smoke, tui_options.channel) == (True, True, "testing")
    assert (tui_options.ssh_config, tui_options.timeout) == (str(ssh_config), 7.5)
    rc, out = await asyncio.to_thread(run_cli, demo_site, cmd)  # its own event loop, as headless
    assert rc == 0, out
    assert len(seen) == 2
    cli_nodes, cli_options = seen[1]
    assert cli_nodes == tui_nodes and cli_options == tui_options


async def test_the_fleet_check_form_refuses_a_timeout_that_is_no_number(demo_site: Path) -> None:
    app = DepotConsole(demo_site, start="nodes")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await settle(pilot)
        form = app.screen
        form.query_one("#timeout", Input).value = "."
        await settle(pilot)
        assert "--timeout" not in command_line(app)
        await pilot.click("#yes")
        await settle(pilot)
        assert app.screen is form
        assert "timeout '.': give seconds, a number above 0" in notification_messages(app)
