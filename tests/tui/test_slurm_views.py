"""Issue 15 item 4: the views show what Slurm says (pilot tests on the demo site).

The nodes view shows each node's Slurm state and features once ``nodes --refresh-from slurm`` has
written them, and flags a feature that claims another CPU than the measured one; the fleet-check
form offers the transport (ssh|slurm, partition, feature); the builds view shows each target's
Slurm job id and state."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from rich.text import Text
from textual.widgets import Input, Select, Static

from console.tui.app import DepotConsole
from console.tui.screens.modals import FleetCheckModal
from core.site.inventory import slurm_rows, upsert_nodes
from core.site.site import Site

from helpers import settle

SIZE = (120, 36)


def _plain(value: object) -> str:
    return value.plain if isinstance(value, Text) else str(value)


def _two_nodes(site_dir: Path) -> tuple[str, str, str, str]:
    """Slurm records for two demo nodes: one whose feature is its measured arch, one whose feature
    claims a different micro-architecture. Returns (good node, its arch, wrong node, its arch)."""
    site = Site(site_dir)
    try:
        rows = [r for r in site.state.nodes.rows() if r["arch"] and r["arch"] not in ("unknown", "zen3")][:2]
        good, wrong = rows
        found = [
            SimpleNamespace(
                name=good["name"],
                state="idle",
                partitions=["cpu"],
                features=[good["arch"]],
                reason="",
                cpus=8,
                memory=1 << 34,
            ),
            SimpleNamespace(
                name=wrong["name"],
                state="drained",
                partitions=["cpu"],
                features=["zen3"],
                reason="test",
                cpus=8,
                memory=1 << 34,
            ),
        ]
        upsert_nodes(site.state, slurm_rows(found, "2026-11-21T11:00:00Z"))
        return good["name"], good["arch"], wrong["name"], wrong["arch"]
    finally:
        site.close()


async def test_nodes_view_shows_slurm_state_features_and_mismatch(demo_site: Path) -> None:
    good, good_arch, wrong, wrong_arch = _two_nodes(demo_site)
    app = DepotConsole(demo_site, start="nodes")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        table = screen.table
        labels = [_plain(c.label) for c in table.columns.values()]
        assert "SLURM" in labels and "FEATURES" in labels
        rows = {k: [_plain(c) for c in table.get_row(str(i))] for i, k in enumerate(table.keys)}
        assert rows[good][labels.index("SLURM")] == "idle"
        assert rows[good][labels.index("FEATURES")] == good_arch
        assert rows[wrong][labels.index("SLURM")] == "drained"
        assert rows[wrong][labels.index("FEATURES")] == "zen3"
        assert rows[wrong][labels.index("ARCH")] == f"{wrong_arch} !"
        assert not rows[good][labels.index("ARCH")].endswith("!")
        panel = str(screen.query_one("#no-fit", Static).render())
        assert f"! {wrong}: feature zen3, but the CPU is {wrong_arch}" in panel


async def test_nodes_view_without_slurm_keeps_its_columns(demo_site: Path) -> None:
    app = DepotConsole(demo_site, start="nodes")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        labels = [_plain(c.label) for c in app.screen.table.columns.values()]
        assert "SLURM" not in labels and "LAST SEEN" in labels


async def test_fleet_check_form_offers_the_slurm_transport(demo_site: Path, monkeypatch) -> None:
    import console.tui.screens.fleetcheck as fleetcheck

    seen: dict = {}

    def fake_select(site, pattern, options):
        seen["selected"] = (pattern, options.slurm.partition, options.slurm.feature)
        return ["node1", "node2"]

    async def fake_check(nodes, options, targets, *, on_start=None, on_result=None):
        seen["nodes"], seen["options"] = list(nodes), options
        return []

    monkeypatch.setattr(fleetcheck, "select_nodes", fake_select)
    monkeypatch.setattr(fleetcheck, "check_fleet", fake_check)
    app = DepotConsole(demo_site, start="nodes")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, FleetCheckModal)
        assert form.query_one("#slurm-where").has_class("hidden")  # ssh: no Slurm fields
        form.query_one("#nodeset", Input).value = ""
        form.query_one("#transport", Select).value = "slurm"
        await pilot.pause()
        assert not form.query_one("#slurm-where").has_class("hidden")
        form.query_one("#partition", Input).value = "cpu"
        form.query_one("#feature", Input).value = "zen3"
        await pilot.click("#yes")
        await settle(pilot)
        assert seen["selected"] == (None, "cpu", "zen3")
        assert seen["nodes"] == ["node1", "node2"]
        assert seen["options"].transport == "slurm"
        assert app.screen.query_one("#fleet-table").row_count == 2
        assert app.command_log[-1] == "console --headless fleet check --via slurm --partition cpu --feature zen3"


async def test_builds_view_shows_each_targets_slurm_job_and_state(demo_site: Path) -> None:
    import core.build.jobs as jobs

    site = Site(demo_site)
    try:
        row = jobs.list_builds(site, limit=1)[0]
        bid, targets = row["id"], row["targets"]
        sjobs = {targets[0]: {"job": 4242, "state": "RUNNING", "node": "node2"}}
        if len(targets) > 1:
            sjobs[targets[1]] = {"job": 4243, "state": "FAILED", "node": "node3", "exit": 1}
        site.state.builds.update(bid, {"executor": "slurm", "jobs": json.dumps(sjobs)})
    finally:
        site.close()
    app = DepotConsole(demo_site, start="builds")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        table = screen.table
        screen.table.move_cursor(row=[k.value for k in table.rows].index(str(bid)), animate=False)
        await settle(pilot)
        labels = [_plain(c.label) for c in table.columns.values()]
        shown = _plain(table.get_row(str(bid))[labels.index("TARGETS")])
        assert shown.startswith(f"{targets[0]}:4242 RUN"[:22])
        detail = str(screen.query_one("#build-detail", Static).render())
        assert "slurm job 4242" in detail and "RUNNING" in detail and "on node2" in detail
        if len(targets) > 1:
            assert "slurm job 4243" in detail and "FAILED" in detail and "exit 1" in detail
