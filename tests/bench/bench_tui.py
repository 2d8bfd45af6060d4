"""TUI benchmark: start-up to first frame and the slowest key press, with 10k releases and 10k nodes.

Goals (issue 7): first frame <= 1 s; no key press slower than 100 ms while scrolling and filtering.
A key press costs the UI thread's CPU time while it is handled and drawn; work the console hands to
a worker thread (a debounced filter query, a view's first rows) is measured separately.
The catalogue rows are synthetic database rows (publishing 10k real releases would measure
publish, not the console), so the releases view's background store sync is stubbed out.

The operator reads the first screen for ``--read-s`` seconds (1 s) before the first key; the
console composes the other views off-screen in such pauses. ``--read-s 0`` measures the cold path
(keys from the first frame on, every view composed on its first visit).

Run: ``python tests/bench/bench_tui.py [--releases N] [--nodes N] [--read-s S]`` (prints JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from console.tui.app import DepotConsole  # noqa: E402
from console.tui.screens import releases as releases_screen  # noqa: E402
from core.site.site import Site  # noqa: E402

ARCHES = ["zen3", "zen4", "icelake", "haswell", "skylake_avx512", "neoverse_v1"]


def populate(root: Path, n_releases: int, n_nodes: int) -> None:
    site = Site.init(root, name="bench")
    key = site.signing_key_id()
    rows = []
    for i in range(n_releases):
        rid = "sha256:" + hashlib.sha256(f"r{i}".encode()).hexdigest()
        rows.append(
            {
                "id": rid,
                "name": f"app{i % 40:02d}",
                "label": f"2026.{i % 12 + 1:02d}-{i}",
                "created": f"2026-{i % 12 + 1:02d}-{i % 28 + 1:02d}T{i % 24:02d}:00:00Z",
                "parent": "",
                "images": json.dumps(["x86_64", "x86_64_v3", "zen4"][: 2 + i % 2]),
                "bytes": 10**8 + i,
                "files": 8000,
                "packages": 160,
                "signed_by": json.dumps([key]),
                "seen_at": "",
            }
        )
    site.state.db["releases"].insert_all(rows, batch_size=2000)
    nodes = [
        {
            "name": f"n{i:05d}",
            "arch": ARCHES[i % len(ARCHES)],
            "vendor": "",
            "cpus": 64,
            "memory": 1 << 37,
            "os": "Rocky 9",
            "flags_digest": "",
            "channels": "{}",
            "images": json.dumps({"production": {"release": "", "image": "x86_64_v3", "reason": ""}}),
            "status": "ok",
            "detail": "",
            "last_seen": "2026-11-21T11:00:00Z",
            "probe": "",
        }
        for i in range(n_nodes)
    ]
    site.state.db["nodes"].insert_all(nodes, batch_size=2000)
    site.state.db["smoke_runs"].insert_all(
        [
            {
                "node": f"n{i:05d}",
                "release": "",
                "image": "x86_64_v3",
                "ok": 1,
                "wall_s": 2.5,
                "baseline_s": 60.0,
                "reduction": 0.958,
                "exit_code": 0,
                "fingerprint": "",
                "time": "2026-11-21T11:00:00Z",
                "detail": "",
            }
            for i in range(0, n_nodes, 2)
        ],
        batch_size=2000,
    )
    site.close()


async def measure(root: Path, read_s: float = 1.0) -> dict:
    releases_screen.ReleasesScreen._sync = staticmethod(  # type: ignore[method-assign]
        lambda site: ([], releases_screen.channels_by_release(site))
    )
    t0 = time.perf_counter()
    app = DepotConsole(root)
    keys: dict[str, list[float]] = {}
    process: list[float] = []
    walls: list[float] = []
    background: dict[str, dict[str, float]] = {}

    async def press(group: str, key: str) -> None:
        # Key latency = CPU time of the UI thread (the thread that runs the app's event loop) while
        # the key is handled and the screen redrawn. Process CPU (worker threads too) and the
        # pilot's wall time (which also counts its idle polling) are reported beside it.
        c, p, t = time.thread_time(), time.process_time(), time.perf_counter()
        await pilot.press(key)
        keys.setdefault(group, []).append(time.thread_time() - c)
        process.append(time.process_time() - p)
        walls.append(time.perf_counter() - t)

    async def settled(what: str) -> None:
        """Wait (bounded) for work that runs after a key press: a debounced filter query, a view's
        first rows; record its wall time and the process CPU it took."""
        p, t = time.process_time(), time.perf_counter()
        for _ in range(2000):
            await app.workers.wait_for_complete()
            await pilot.pause()
            if not getattr(app.screen, "filter_pending", False) and not app.workers:
                break
            await pilot.pause(0.01)
        background[what] = {
            "wall_ms": round((time.perf_counter() - t) * 1000, 1),
            "process_cpu_ms": round((time.process_time() - p) * 1000, 1),
        }

    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        first_frame = time.perf_counter() - t0
        # The operator reads the first screen before the first key; the console composes the
        # other views off-screen in that pause (``--read-s 0``: keys from the first frame on).
        await asyncio.sleep(read_s)
        for _ in range(400):
            await press("scroll releases (down)", "down")
        for _ in range(30):
            await press("scroll releases (pagedown)", "pagedown")
        await press("scroll releases (end, home)", "end")
        await press("scroll releases (end, home)", "home")
        await press("open filter", "slash")
        for ch in "app07":
            await press("filter releases (typing)", ch)
        await settled("releases filter query (debounced, worker)")
        for _ in range(5):
            await press("filter releases (backspace)", "backspace")
        await settled("releases filter cleared (debounced, worker)")
        await press("leave filter", "escape")
        await press("jump to nodes", "3")
        await settled("nodes view first rows + summary (worker)")
        for _ in range(400):
            await press("scroll nodes (down)", "down")
        for _ in range(30):
            await press("scroll nodes (pagedown)", "pagedown")
        await press("open filter", "slash")
        for ch in "zen4":
            await press("filter nodes (typing)", ch)
        await settled("nodes filter query (debounced, worker)")
        await press("leave filter", "escape")
        await settled("nodes filter cleared (worker)")
        await press("jump to audit", "5")
        await press("jump to releases", "1")
        await press("jump to nodes (again)", "3")
    every = [t for ts in keys.values() for t in ts]
    return {
        "first_frame_s": round(first_frame, 3),
        "slowest_key_ms": round(max(every) * 1000, 1),  # UI-thread CPU
        "p95_key_ms": round(sorted(every)[int(len(every) * 0.95)] * 1000, 1),
        "keys": len(every),
        "slowest_key_process_cpu_ms (workers included)": round(max(process) * 1000, 1),
        "slowest_key_wall_ms (pilot, includes idle polling)": round(max(walls) * 1000, 1),
        "median_key_wall_ms": round(sorted(walls)[len(walls) // 2] * 1000, 1),
        "slowest_by_group_ms": {g: round(max(ts) * 1000, 1) for g, ts in keys.items()},
        "after_the_key (not key latency)": background,
        "goals": {"first_frame_s": 1.0, "slowest_key_ms": 100},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument(
        "--read-s",
        type=float,
        default=1.0,
        help="seconds between the first frame and the first key (the operator reads)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "site"
        populate(root, args.releases, args.nodes)
        result = asyncio.run(measure(root, args.read_s))
    result.update(releases=args.releases, nodes=args.nodes, read_s=args.read_s)
    print(json.dumps(result, indent=2))
    ok = result["first_frame_s"] <= 1.0 and result["slowest_key_ms"] <= 100
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
