"""Regenerate an SVG of every console screen into ``screenshots/`` (shown in the README).

    python scripts/screenshots.py [--out screenshots]

Builds the deterministic demo site (seed 0, clock pinned) in a temporary directory, opens the
console on it at 120x36 and at 80x24 and saves one SVG per screen and size: releases, release
detail, compare, channels, the rollback confirmation, nodes, builds, audit, rollout, a row's
detail (enter) and the keys (help) screen; ``screenshots/NAME.svg`` at 120x36 (the README's),
``screenshots/80x24/NAME.svg`` at the smallest terminal an operator is expected to have.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEMO_NOW = "2026-11-21T12:00:00Z"
SHOTS = [  # (file name, starting view, keys)
    ("releases", "releases", ()),
    ("release-detail", "releases", ("enter",)),
    ("compare", "releases", ("space", "down", "down", "space", "c")),
    ("channels", "channels", ()),
    ("rollback-confirm", "channels", ("b",)),
    ("nodes", "nodes", ()),
    ("builds", "builds", ()),
    ("audit", "audit", ()),
    ("rollout", "rollout", ()),
    ("row-detail", "audit", ("enter",)),
    ("help", "releases", ("question_mark",)),
]
SIZES = [((120, 36), ""), ((80, 24), "80x24")]  # (columns, rows), subdirectory


async def shoot(site: Path, out: Path, name: str, start: str, keys: tuple[str, ...], size: tuple[int, int]) -> Path:
    from console.tui.app import DepotConsole

    app = DepotConsole(site, start=start)
    async with app.run_test(size=size) as pilot:
        for key in ("", *keys):
            if key:
                await pilot.press(key)
            for _ in range(3):
                await app.workers.wait_for_complete()
                await pilot.pause()
        path = out / f"{name}.svg"
        app.save_screenshot(filename=path.name, path=str(out))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    args = parser.parse_args(argv)
    os.environ["DEPOT_CONSOLE_NOW"] = DEMO_NOW
    os.environ["DEPOT_ACTOR"] = "operator@ops"
    from core.demo.site import build_demo

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        build_demo(site, seed=0)
        for size, sub in SIZES:
            out = args.out / sub if sub else args.out
            out.mkdir(parents=True, exist_ok=True)
            for name, start, keys in SHOTS:
                path = asyncio.run(shoot(site, out, name, start, keys, size))
                print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
