"""Issue 16 item 4: the Rollout view (pilot test on the demo site with a rollout started)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from console.tui.app import DepotConsole
from core.site import rollout
from core.site.inventory import record_smoke_runs
from core.site.site import Site

from helpers import settle

SIZE = (120, 36)


def _start_rollout(site_dir: Path) -> tuple[str, list[str]]:
    site = Site(site_dir)
    try:
        nodes = [r["name"] for r in site.state.nodes.rows()][:2]
        releases = [r["id"] for r in site.state.releases.rows(limit=50)]
        ro = None
        for rel in releases:
            try:
                ro = rollout.start(site, rel, "production", nodes, ["100%"])
                break
            except Exception:  # noqa: BLE001 - the current release cannot be rolled out over itself
                continue
        assert ro is not None
        record_smoke_runs(
            site.state,
            [
                {
                    "node": nodes[0],
                    "release": ro.release,
                    "image": "x",
                    "ok": 1,
                    "wall_s": 1.25,
                    "time": "2026-11-21T11:00:00Z",
                },
                {
                    "node": nodes[1],
                    "release": ro.release,
                    "image": "x",
                    "ok": 0,
                    "wall_s": 3.0,
                    "time": "2026-11-21T11:00:00Z",
                },
            ],
        )
        return ro.release, nodes
    finally:
        site.close()


async def test_rollout_view_shows_stages_verdicts_and_blockers(demo_site: Path) -> None:
    release, nodes = _start_rollout(demo_site)
    app = DepotConsole(demo_site, start="releases")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("6")
        await settle(pilot)
        body = str(app.screen.query_one("#rollout-body", Static).render())
        assert "production" in body and "running" in body
        assert "▶ canary" in body
        assert "smoke per CPU type" in body and "FAILED" in body and "start-up" in body
        assert "blocked by" in body
