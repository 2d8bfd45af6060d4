"""Issue 18 item 16: the fleet check view against the real loopback sshd.

A check whose nodes never answered says so ("0 of 3 answered, 2 unreachable, 1 timeout", not
"3 of 3"), its ``x Cancel`` key leaves the footer once the check is over, and the Nodes view it
was started from shows what the check recorded without being asked to reload."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from textual.widgets import Static
from textual.widgets._footer import FooterKey

from console.tui.app import DepotConsole
from console.tui.screens.fleetcheck import FleetCheckScreen
from console.tui.screens.nodes import NodesScreen
from console.tui.textual_compat import notification_messages
from console.tui.widgets.footer import ConsoleFooter
from core.site.inventory import upsert_nodes
from core.site.site import Site

from fixtures.sshd import PLAIN_ARCH, SshdServer
from helpers import init_site, set_config, settle

SIZE = (120, 36)
DEADLINE_S = 3  # [fleet] timeout: what slownode runs into


def fleet_site(tmp_path: Path, sshd: SshdServer) -> Path:
    """A site whose [fleet] ssh_config is the fixture's plus ``ghostnode`` (nothing listens there)."""
    site = init_site(tmp_path / "site")
    cfg = tmp_path / "ssh_config"
    cfg.write_text("Host ghostnode\n    HostName 127.0.0.12\n\n" + Path(sshd.config_path).read_text())
    set_config(site, "fleet", "ssh_config", str(cfg))
    set_config(site, "fleet", "timeout", DEADLINE_S)
    set_config(site, "fleet", "connect_timeout", 5)
    return site


def text_of(renderable) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def footer_actions(screen: FleetCheckScreen) -> list[str]:
    return [k.action for k in screen.query_one(ConsoleFooter).query(FooterKey)]


async def wait_until(pilot, condition, what: str, limit: int = 600) -> None:
    """A bounded wait for the real ssh processes of a check: re-check after each short pause."""
    for _ in range(limit):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_check_no_node_answered_says_so_and_drops_its_cancel_key(tmp_path: Path, sshd: SshdServer) -> None:
    site = fleet_site(tmp_path, sshd)
    app = DepotConsole(site, start="nodes")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        nodes = ["deadnode", "ghostnode", "slownode"]
        screen = FleetCheckScreen("deadnode,ghostnode,slownode", nodes, False, "")
        app.push_screen(screen)
        await wait_until(pilot, lambda: "slownode" not in screen.results and len(screen.results) == 2, "two refusals")
        assert screen.running and "cancel" in footer_actions(screen)  # slownode still holds the check
        await wait_until(pilot, lambda: not screen.running, "the check to end")
        await settle(pilot)
        assert {n: c.status for n, c in screen.results.items()} == {
            "deadnode": "unreachable",
            "ghostnode": "unreachable",
            "slownode": "timeout",
        }
        assert "fleet check done: 0 of 3 answered, 2 unreachable, 1 timeout" in notification_messages(app)
        assert "cancel" not in footer_actions(screen)
        assert screen.check_action("cancel", ()) is False


async def test_the_nodes_view_shows_what_a_check_recorded_when_it_ends(tmp_path: Path, sshd: SshdServer) -> None:
    site_dir = fleet_site(tmp_path, sshd)
    site = Site(site_dir)
    try:  # node01 as an earlier check left it: never answered
        upsert_nodes(site.state, [{"name": "node01", "status": "unreachable", "detail": "ssh: timeout"}])
    finally:
        site.close()
    app = DepotConsole(site_dir, start="nodes")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        nodes_view = app.screen
        assert isinstance(nodes_view, NodesScreen)

        def row() -> dict[str, str]:
            table = nodes_view.table
            labels = [str(c.label) for c in table.columns.values()]
            [cells] = [[c.plain for c in table.get_row_at(i)] for i in range(table.row_count)]
            return {label: cells[i].strip() for i, label in enumerate(labels)}

        assert (row()["NODE"], row()["ARCH"], row()["STATUS"]) == ("node01", "unknown", "unreachable")
        screen = FleetCheckScreen("node01", ["node01"], False, "")
        app.push_screen(screen)
        await wait_until(pilot, lambda: not screen.running, "the check to end")
        await settle(pilot)
        assert screen.results["node01"].status == "ok"
        assert (row()["NODE"], row()["ARCH"], row()["STATUS"]) == ("node01", PLAIN_ARCH, "ok")
        chart = text_of(nodes_view.query_one("#arch-chart", Static).content)
        assert PLAIN_ARCH in chart and "unknown" not in chart  # the per-arch summary reloaded too
