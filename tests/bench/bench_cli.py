"""Benchmark: CLI start-up of the verbs scripts call in loops, against OSTree and the bare interpreter.

    python tests/bench/bench_cli.py [--repeat N] [--rows FILE]

On a demo site (``console demo``) and a node root hydrated from it, each verb (``show``, ``diff``,
``releases``, ``channels``, ``node env``, ``node status``) runs ``--repeat`` times (best kept):

* import time: the sum of ``python -X importtime`` top-level entries, split into the
  environment's part (``site``: .pth files such as an editable install's finder or a CA bundle
  hook, paid by any Python program here) and ours (everything else); goal (issue 17): ours <= 60 ms;
* wall time of the whole command vs ``ostree --version`` (a C tool's start-up) and, for ``diff``,
  vs ``ostree diff`` of two commits of the same synthetic depots (small scale); and vs the floor:
  ``python -c pass`` (interpreter start-up, site included).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path[:0] = [str(REPO), str(HERE.parent), str(HERE)]

from depotgen import generate  # noqa: E402
from peers import ostree_commit, ostree_rev  # noqa: E402

ENV = dict(os.environ, PYTHONPATH=str(REPO))
_IMPORT = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def run(args: list[str], env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env or ENV, cwd=REPO)
    return time.perf_counter() - t0, proc


def import_ms(args: list[str]) -> tuple[float, float]:
    """(ours, environment's ``site``) milliseconds of ``python -X importtime`` top-level imports."""
    _, proc = run([sys.executable, "-X", "importtime", *args])
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    ours = site = 0
    for line in proc.stderr.splitlines():
        m = _IMPORT.match(line)
        if m and len(m.group(3)) == 1:
            if m.group(4) == "site":
                site += int(m.group(2))
            else:
                ours += int(m.group(2))
    return ours / 1000, site / 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7, help="runs per measurement; best is kept")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--rows", type=Path, default=None, help="write README table rows (JSON) here")
    args = ap.parse_args()
    for package in ("core", "console"):  # as pip leaves an install (PYTHONDONTWRITEBYTECODE would not)
        compileall.compile_dir(REPO / package, quiet=1)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-cli-"))
    work.mkdir(parents=True, exist_ok=True)
    site, node = work / "site", work / "node"
    con = [sys.executable, "-m", "console.cli", "--headless"]
    try:
        shutil.rmtree(site, ignore_errors=True)
        _, proc = run([*con, "demo", str(site), "--json"])
        demo = json.loads(proc.stdout)
        rels = demo["releases"]
        _, proc = run(
            [*con, "--site", str(site), "node", "hydrate", "--root", str(node), "--store", str(site / "store")]
            + ["--channel", "production", "--no-progress"]
        )
        if proc.returncode != 0:
            raise SystemExit(f"node hydrate failed: {proc.stderr.strip()}")
        repo = work / "ostree"
        for v in (0, 1):
            generate(work / f"tree-{v}", scale=0.05, seed=0, variant=v)
            ostree_commit(repo, work / f"tree-{v}", "depot")
        rev_b, rev_a = ostree_rev(repo, "depot"), ostree_rev(repo, "depot^")

        verbs = {
            "show": ["show", rels[0][7:19]],
            "diff": ["diff", rels[0][7:19], rels[1][7:19]],
            "releases": ["releases"],
            "channels": ["channels"],
            "node env": ["node", "env", "--root", str(node), "--channel", "production"],
            "node status": ["node", "status", "--root", str(node)],
        }
        n = args.repeat
        runtime = work / "run"
        runtime.mkdir(mode=0o700, exist_ok=True)
        agent_env = dict(ENV, XDG_RUNTIME_DIR=str(runtime))
        _, proc = run([sys.executable, "-m", "console", "agent", "start", "--idle-timeout", "600"], agent_env)
        if proc.returncode != 0:
            raise SystemExit(f"agent start failed: {proc.stderr.strip()}")
        bare = min(run([sys.executable, "-S", "-c", "pass"])[0] for _ in range(n))
        floor = min(run([sys.executable, "-c", "pass"])[0] for _ in range(n))
        floor_site = min(import_ms(["-c", "pass"])[1] for _ in range(n))
        ost_version = min(run(["ostree", "--version"])[0] for _ in range(n))
        ost_diff = min(run(["ostree", "diff", f"--repo={repo}", rev_a, rev_b])[0] for _ in range(n))
        print(f"python -c pass: {floor * 1000:.1f} ms (site/.pth imports {floor_site:.1f} ms)")
        print(f"ostree --version: {ost_version * 1000:.1f} ms; ostree diff: {ost_diff * 1000:.1f} ms")
        print(
            f"{'verb':12} {'ours ms':>8} {'site ms':>8} {'wall ms':>8} {'x ostree':>9} {'x python':>9} {'agent ms':>9} {'x ostree':>9}  goal: ours <= 60 ms"
        )
        rows = []
        worst_ours, walls, agent_walls = 0.0, {}, {}
        for name, a in verbs.items():
            full = ["-m", "console.cli", "--headless", "--site", str(site), *a]
            imp = min(import_ms(full) for _ in range(n))
            wall = min(run([sys.executable, *full])[0] for _ in range(n))
            peer = ost_diff if name == "diff" else ost_version
            via = [sys.executable, "-m", "console", *full[2:]]
            agent_walls[name] = min(run(via, agent_env)[0] for _ in range(n))
            walls[name] = wall
            worst_ours = max(worst_ours, imp[0])
            print(
                f"{name:12} {imp[0]:8.1f} {imp[1]:8.1f} {wall * 1000:8.1f} {wall / peer:9.2f} {wall / floor:9.2f}"
                f" {agent_walls[name] * 1000:9.1f} {agent_walls[name] / peer:9.2f}"
                + ("  (x ostree diff)" if name == "diff" else "")
            )
        print(f"python -S -c pass (no site-packages, no .pth): {bare * 1000:.1f} ms")
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"load average: {load} (2 cores: >2 = shared)")
        rows.append(
            {
                "what": "CLI start-up: show, diff, releases, channels, node env, node status",
                "result": f"imports <= {worst_ours:.0f} ms ours (+ {floor_site:.0f} ms of this Python's site/.pth); "
                f"wall {min(walls.values()) * 1000:.0f}-{max(walls.values()) * 1000:.0f} ms = "
                f"{min(walls.values()) / floor:.1f}x-{max(walls.values()) / floor:.1f}x `python -c pass`, "
                f"{min(walls.values()) / ost_version:.0f}x-{max(walls.values()) / ost_version:.0f}x `ostree --version`",
                "goal": "<= 60 ms imports",
            }
        )
        rows.append(
            {
                "what": "`console diff A B` through the CLI",
                "result": f"{walls['diff'] * 1000:.0f} ms = {walls['diff'] / ost_diff:.1f}x `ostree diff` "
                f"({ost_diff * 1000:.0f} ms); {walls['diff'] / floor:.1f}x `python -c pass`",
                "goal": "<= 1.0x",
            }
        )
        d = agent_walls["diff"]
        rows.append(
            {
                "what": "`console diff A B` through the CLI, `console agent` running",
                "result": f"{d * 1000:.0f} ms = {d / ost_diff:.1f}x `ostree diff`; {d / floor:.2f}x `python -c pass` "
                f"({floor * 1000:.0f} ms, {floor_site:.0f} ms of it this Python's site/.pth; `python -S`: "
                f"{bare * 1000:.0f} ms); all six verbs {min(agent_walls.values()) * 1000:.0f}-"
                f"{max(agent_walls.values()) * 1000:.0f} ms",
                "goal": "<= 1.0x",
            }
        )
        rows = [dict(r, load=round(os.getloadavg()[0], 1)) for r in rows]
        if args.rows:
            args.rows.write_text(json.dumps(rows, indent=2) + "\n")
    finally:
        run([sys.executable, "-m", "console", "agent", "stop"], dict(ENV, XDG_RUNTIME_DIR=str(work / "run")))
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
