"""Benchmark: publish, unchanged re-publish, verify --deep and diff, against their peers.

    python tests/bench/bench_publish.py [--scale S] [--repeat N]

All on one synthetic Julia depot (``depotgen.generate``; scale 1.0 = ~500 MB / ~8k files) and
its variant with three packages bumped, measured in the same run:

* publish (real CLI, interpreter start-up included, one syncfs barrier) vs ``ostree commit``
  into an archive-mode repo (default fsync) and vs a single-threaded sha256 of every file;
* unchanged re-publish vs the first publish (the (path, size, mtime, inode) cache);
* ``verify --deep`` (printed, no peer: ``ostree fsck`` is reported alongside for scale);
* ``diff`` base vs variant (CLI, and the core call alone) vs ``ostree diff`` of the two commits.

Goals (issue 2): publish <= 0.3x ostree commit; re-publish <= 0.2x first publish; diff no slower
than ostree diff. Every ratio printed is ours / peer, measured in this run (best of N).
"""

from __future__ import annotations

import argparse
import json
import os
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
from peers import ostree_commit, ostree_diff, ostree_rev, sha256_tree  # noqa: E402

CLI = [sys.executable, "-m", "console.cli", "--headless"]


def cli(site: Path, *args: str) -> tuple[float, dict]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t0 = time.perf_counter()
    proc = subprocess.run([*CLI, "--site", str(site), *args, "--json"], capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"console {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return dt, json.loads(proc.stdout)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=2, help="fresh stores per measurement; best is kept")
    ap.add_argument("--work", type=Path, default=None, help="work directory (default: a temp dir)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-publish-"))
    base, variant = work / "base", work / "variant"
    t = time.perf_counter()
    stats = generate(base, scale=args.scale, seed=0, variant=0)
    generate(variant, scale=args.scale, seed=0, variant=1)
    print(f"depot: {stats['files']} files, {stats['bytes'] / 1e6:.0f} MB (generated in {time.perf_counter() - t:.1f}s)")

    sha = min(sha256_tree(base) for _ in range(args.repeat))  # also warms the page cache for both peers
    ost, pub, repub = [], [], []
    for i in range(args.repeat):
        repo = work / f"ostree-{i}"
        shutil.rmtree(repo, ignore_errors=True)
        ost.append(ostree_commit(repo, base, "depot"))
        site = work / f"site-{i}"
        shutil.rmtree(site, ignore_errors=True)
        cli(site, "init")
        dt, first = cli(site, "publish", "--name", "bench", "--image", f"x86_64={base}")
        pub.append(dt)
        dt, again = cli(site, "publish", "--name", "bench", "--label", "again", "--image", f"x86_64={base}")
        assert again["new_objects"] == 0, again
        repub.append(dt)
    site = work / f"site-{args.repeat - 1}"
    repo = work / f"ostree-{args.repeat - 1}"
    ver = min(cli(site, "verify", "--deep")[0] for _ in range(args.repeat))
    fsck = min(
        timed(lambda: subprocess.run(["ostree", "fsck", f"--repo={repo}"], capture_output=True, check=True))
        for _ in range(args.repeat)
    )

    _, b = cli(site, "publish", "--name", "bench", "--label", "variant", "--image", f"x86_64={variant}")
    ostree_commit(repo, variant, "depot")
    rev_b, rev_a = ostree_rev(repo, "depot"), ostree_rev(repo, "depot^")
    a_id = first["release_id"]
    diff_cli = min(cli(site, "diff", a_id, b["release_id"], "--files")[0] for _ in range(max(3, args.repeat)))
    from core.site.diff import diff_releases
    from core.site.site import open_site

    s = open_site(site)
    diff_core = min(timed(lambda: diff_releases(s, a_id, b["release_id"])) for _ in range(max(3, args.repeat)))
    s.close()
    odiff = min(ostree_diff(repo, rev_a, rev_b) for _ in range(max(3, args.repeat)))
    startup = min(
        timed(lambda: subprocess.run([*CLI, "--help"], capture_output=True, env=dict(os.environ, PYTHONPATH=str(REPO))))
        for _ in range(3)
    )

    P, R, OST, S = min(pub), min(repub), min(ost), sha
    print(f"{'measurement':44} {'seconds':>8} {'ratio':>7}  goal")
    print(f"{'sha256 of every file (1 thread)':44} {S:8.2f}")
    print(f"{'ostree commit (archive, default fsync)':44} {OST:8.2f}")
    print(f"{'console publish (first)':44} {P:8.2f} {P / OST:7.2f}  <= 0.30 x ostree commit")
    print(f"{'   ... vs sha256 of every file':44} {'':8} {P / S:7.2f}")
    print(f"{'console publish (unchanged, cached)':44} {R:8.2f} {R / P:7.2f}  <= 0.20 x first publish")
    print(f"{'console verify --deep':44} {ver:8.2f} {ver / fsck:7.2f}  (vs ostree fsck {fsck:.2f}s, no goal)")
    print(f"{'ostree diff':44} {odiff:8.3f}")
    print(
        f"{'console diff --files (CLI, incl. start-up)':44} {diff_cli:8.3f} {diff_cli / odiff:7.2f}  <= 1.0 x ostree diff"
    )
    print(f"{'core diff_releases (in process)':44} {diff_core:8.3f} {diff_core / odiff:7.2f}")
    print(f"{'console --help (interpreter + imports)':44} {startup:8.3f}")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
        os.sync()  # see bench_hydrate: deleted inodes slow every allocation for 1 minute once written back, 6 before


if __name__ == "__main__":
    main()
