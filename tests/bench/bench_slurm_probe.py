"""Benchmark: fleet probe of three nodes, ``console fleet check --via slurm`` vs the same check over SSH.

The Slurm side is the cluster of tests/fixtures/slurm.py (munged, slurmctld, three slurmd on
loopback: one srun step); the SSH side is three plain aliases of the loopback sshd of
tests/fixtures/sshd.py (three ssh). Each run is a fresh ``console`` process (start-up included),
one warm-up each, then alternating rounds; medians printed. No goal: the point is that the probe
works where ssh to compute nodes is refused.

    python tests/bench/bench_slurm_probe.py [--rounds 3]

Needs root, slurm-wlm, munge, openssh-server/-client (apt).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path[:0] = [str(REPO), str(HERE.parent)]

from fixtures import slurm as slurm_fixture  # noqa: E402
from fixtures import sshd as sshd_fixture  # noqa: E402

CONSOLE = [sys.executable, "-m", "console.cli", "--headless"]


def run(site: Path, env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run([*CONSOLE, "--site", str(site), *args, "--json"], capture_output=True, env=env)
    elapsed = time.perf_counter() - start
    doc = json.loads(proc.stdout or b"{}")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: exit {proc.returncode}: {proc.stderr.decode(errors='replace')[-300:]}")
    assert doc["summary"]["counts"] == {"ok": 3}, doc["summary"]
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-slurm-") as tmp:
        root = Path(tmp)
        (root / "slurm").mkdir()
        (root / "sshd").mkdir()
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("DEPOT_CONSOLE_SITE", None)
        procs, cluster = slurm_fixture.start_slurm(root / "slurm")
        sshd_proc, server = sshd_fixture.start_sshd(root / "sshd")
        try:
            env.update(cluster.env)
            site = root / "site"
            subprocess.run([*CONSOLE, "--site", str(site), "init"], check=True, capture_output=True, env=env)
            ssh_nodes = ",".join(server.plain_nodes[:3])
            via_slurm = ("fleet", "check", "node[1-3]", "--via", "slurm")
            via_ssh = ("fleet", "check", ssh_nodes, "--via", "ssh", "--ssh-config", server.config_path)
            run(site, env, *via_slurm)
            run(site, env, *via_ssh)
            times: dict[str, list[float]] = {"slurm": [], "ssh": []}
            for _ in range(args.rounds):
                times["slurm"].append(run(site, env, *via_slurm))
                times["ssh"].append(run(site, env, *via_ssh))
        finally:
            sshd_fixture._stop(sshd_proc, root / "sshd")
            slurm_fixture._stop(procs, root / "slurm")
    for name, values in times.items():
        print(f"probe of 3 nodes via {name:<5}: median {statistics.median(values):.3f}s over {len(values)} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
