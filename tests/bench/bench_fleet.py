"""Benchmark: fleet probe of N loopback nodes, ``console fleet check`` vs ``clush`` (DESIGN §9).

Both tools reach the same N ssh aliases (``bench001``…, spread over the five plain addresses of
the loopback sshd of tests/fixtures/sshd.py) through the same client config, at the same fanout,
and run the same probe (``python3 -`` with core/probe.py on stdin). Each side is a fresh process
(Python start-up included on both sides, clush being Python too); stdout goes to a pipe and is
read in full. The console side also classifies, picks images and writes the database; clush only
prints. Runs alternate (console, clush, console, …) after one warm-up each; the median counts.

    python tests/bench/bench_fleet.py --nodes 100 [--fanout 64] [--rounds 3]

Goal: ratio console/clush <= 1.0. Needs openssh-server/-client (apt) and ClusterShell (pip).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path[:0] = [str(REPO), str(HERE.parent)]

from core.node.probe import probe_source  # noqa: E402

from fixtures.sshd import PLAIN_NODES, _stop, start_sshd  # noqa: E402


def bench_config(base_config: str, n: int, path: Path) -> list[str]:
    """A client config with ``n`` aliases over the fixture's plain addresses, then the fixture's own."""
    addresses = list(PLAIN_NODES.values())
    names = [f"bench{i:03d}" for i in range(1, n + 1)]
    blocks = [f"Host {name}\n    HostName {addresses[i % len(addresses)]}\n" for i, name in enumerate(names)]
    path.write_text("".join(blocks) + Path(base_config).read_text())
    path.chmod(0o600)
    return names


def timed(argv: list[str], env: dict[str, str], stdin: bytes | None = None) -> tuple[float, bytes, int]:
    start = time.perf_counter()
    proc = subprocess.run(
        argv, input=stdin, capture_output=True, env=env, stdin=None if stdin is not None else subprocess.DEVNULL
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).decode(errors="replace").strip().splitlines()[-3:]
        raise SystemExit(f"{' '.join(argv[:6])}…: exit {proc.returncode}: {' | '.join(tail)}")
    return elapsed, proc.stdout, proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--fanout", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    clush = shutil.which("clush")
    if clush is None:
        raise SystemExit("clush not found: pip install ClusterShell")

    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    (work / "sshd").mkdir()
    proc, server = start_sshd(work / "sshd")
    try:
        cfg = work / "bench_ssh_config"
        names = bench_config(server.config_path, args.nodes, cfg)
        nodeset = f"bench[001-{args.nodes:03d}]"
        env = dict(os.environ, PYTHONPATH=str(REPO))
        env.pop("DEPOT_CONSOLE_SITE", None)
        site = work / "site"
        subprocess.run(
            [sys.executable, "-m", "console.cli", "--site", str(site), "init"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        console_cmd = [
            sys.executable,
            "-m",
            "console.cli",
            "--headless",
            "--site",
            str(site),
            "fleet",
            "check",
            nodeset,
            "--ssh-config",
            str(cfg),
            "--fanout",
            str(args.fanout),
            "--timeout",
            "120",
        ]
        clush_cmd = [clush, "-f", str(args.fanout), "-w", nodeset, "-o", f"-F {cfg}", "-t", "10", "python3 -"]
        probe = probe_source()

        def run_console() -> float:
            seconds, out, _ = timed(console_cmd, env)
            lines = out.decode().splitlines()
            ok = sum(1 for line in lines[: len(names)] if line.split()[1:2] == ["ok"])
            if ok != len(names):
                raise SystemExit(f"console: only {ok} of {len(names)} nodes ok")
            return seconds

        def run_clush() -> float:
            seconds, out, _ = timed(clush_cmd, env, stdin=probe)
            answers = [line for line in out.decode().splitlines() if ": {" in line]
            if len(answers) != len(names) or not all(json.loads(a.split(": ", 1)[1]) for a in answers):
                raise SystemExit(f"clush: {len(answers)} probe answers for {len(names)} nodes")
            return seconds

        run_console(), run_clush()  # warm-up: page cache, sshd's first forks
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(run_console())
            theirs.append(run_clush())
        med_ours, med_theirs = statistics.median(ours), statistics.median(theirs)
        ratio = med_ours / med_theirs
        print(f"fleet probe of {args.nodes} loopback nodes, fanout {args.fanout}, {args.rounds} rounds (median)")
        print(f"  console fleet check: {med_ours:.3f}s  (runs: {', '.join(f'{t:.3f}' for t in ours)})")
        print(f"  clush -w:            {med_theirs:.3f}s  (runs: {', '.join(f'{t:.3f}' for t in theirs)})")
        print(f"  ratio console/clush: {ratio:.2f}x  (goal <= 1.0x: {'met' if ratio <= 1.0 else 'NOT met'})")
        return 0
    finally:
        _stop(proc, work / "sshd")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
