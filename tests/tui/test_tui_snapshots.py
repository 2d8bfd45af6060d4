"""SVG snapshots of every console screen on the deterministic demo site (pinned clock, seeded key,
fixed terminal size). Update after an intended change: ``pytest tests/test_tui_snapshots.py --snapshot-update``."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.tui.app import DepotConsole

from helpers import settle

SIZE = (120, 36)


def keys_then_settle(*keys: str):
    async def run(pilot) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run


CASES = {
    "releases": ("releases", ()),
    "release_detail": ("releases", ("enter",)),
    "compare": ("releases", ("space", "down", "down", "space", "c")),
    "channels": ("channels", ()),
    "rollback_modal": ("channels", ("b",)),
    "nodes": ("nodes", ()),
    "builds": ("builds", ()),
    "audit": ("audit", ()),
    "help": ("releases", ("question_mark",)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_screen_snapshot(case: str, demo_site: Path, snap_compare) -> None:
    start, keys = CASES[case]
    app = DepotConsole(demo_site, start=start)
    assert snap_compare(app, terminal_size=SIZE, run_before=keys_then_settle(*keys))
