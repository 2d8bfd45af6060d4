"""Issue 18 items 6 and 9: the Nodes view says ``unknown`` (never ``None``) for a node whose CPU is
not known, as the CLI does, and shows the channels the site has (not hard-coded production/testing)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Static

import core.site.channels as channel_ops
from console.tui.app import DepotConsole
from console.tui.widgets.cells import InertTable
from core.site.inventory import Classified, node_row, upsert_nodes
from core.site.publish import publish
from core.site.site import Site, format_time

from helpers import init_site, make_tree, settle

SIZE = (120, 36)


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """Channels named 'stable' and 'edge'; a zen3 node, a node never classified, one never reached."""
    s = init_site(tmp_path / "site")
    site = Site(s)
    try:
        tree = make_tree(tmp_path / "t", {"a.txt": "a"})
        rid = publish(site, "app", {"x86_64": tree}, label="1").release_id
        channel_ops.promote(site, rid, "stable", "first", create=True)
        channel_ops.promote(site, rid, "edge", "first", create=True)
        now = format_time(site.now())
        picks = {"stable": {"image": "x86_64"}, "edge": {"image": "x86_64"}}
        upsert_nodes(
            site.state,
            [
                node_row("n01", {"cpus": 4}, Classified("zen3", "AuthenticAMD", ""), picks, "ok", "", now),
                node_row("n02", {"cpus": 4}, Classified(None, "", "", "no cpuinfo"), {}, "ok", "", now),
            ],
        )
        upsert_nodes(site.state, [{"name": "n03", "status": "unreachable", "detail": "ssh: timeout"}])
    finally:
        site.close()
    return s


def text_of(renderable) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


async def test_nodes_view_says_unknown_and_shows_the_sites_channels(site_dir: Path) -> None:
    app = DepotConsole(site_dir, start="nodes")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#nodes-table", InertTable)
        headers = [str(c.label) for c in table.columns.values()]
        assert headers[:4] == ["NODE", "ARCH", "EDGE", "STABLE"]
        rows = {r[0].plain.strip(): [c.plain for c in r] for r in map(table.get_row_at, range(table.row_count))}
        assert rows["n01"][1:4] == ["zen3", "x86_64", "x86_64"]
        assert rows["n02"][1] == "unknown" and rows["n03"][1] == "unknown"
        chart = text_of(app.screen.query_one("#arch-chart", Static).content)
        no_fit = str(app.screen.query_one("#no-fit", Static).content)
        screen = "\n".join([chart, no_fit, *(" ".join(r) for r in rows.values())])
        assert "None" not in screen
        assert "unknown" in chart
        assert "n[02-03]: 2 unknown node(s)" in no_fit
