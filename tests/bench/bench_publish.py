"""Benchmark: publish, unchanged re-publish, verify --deep and diff, against their peers and the floor.

    python tests/bench/bench_publish.py [--shapes depot,registry] [--scale S] [--registry N] [--repeat N]
                                        [--rows FILE]

Two depot shapes, each with its variant (three packages bumped), measured in the same run:

* ``depot``: the synthetic Julia depot (``depotgen.generate``; scale 1.0 = ~500 MB / ~8k files);
* ``registry``: many small files, a depot at ``--registry-scale`` (0.25) with a full unpacked
  General registry (``--registry`` 10,000 packages: ~40k files under 4 KiB, ~41k files in all).

Per shape:

* publish (real CLI, interpreter start-up included, one syncfs barrier) vs ``ostree commit``
  into an archive-mode repo (default fsync), and vs the floor (issue 17): ``tar -cf - . | zstd
  -T0 -3`` of the tree into one file plus sha256 of its bytes, measured in this run;
* unchanged re-publish vs the first publish (the (path, size, mtime, inode) cache) and the floor;
* ``verify --deep`` vs ``ostree fsck`` (no goal);
* ``diff`` base vs variant (CLI, and the core call alone) vs ``ostree diff`` of the two commits;

each into a store of every layout in ``--layouts`` (default both: ``loose``, every object a file,
and ``packed``, trees and small files only in the release packs: ``core.store.locator``).

Goals (issues 2, 17): publish <= 0.3x ostree commit and <= 2x the floor; re-publish <= 0.2x first
publish; diff no slower than ostree diff. Every ratio printed is ours / peer, measured in this run
(best of N). ``--rows FILE`` writes the README table rows (``tests/bench/readme_table.py``).
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
from peers import ostree_commit, ostree_diff, ostree_rev, publish_floor, sha256_tree  # noqa: E402

CLI = [sys.executable, "-m", "console.cli", "--headless"]


def cli(site: Path, *args: str) -> tuple[float, dict]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*CLI, "--site", str(site), *args, "--json"], capture_output=True, text=True, env=env, cwd=REPO
    )
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"console {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return dt, json.loads(proc.stdout)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def make_shape(shape: str, root: Path, variant: int, args: argparse.Namespace) -> dict:
    if shape == "registry":
        return generate(root, scale=args.registry_scale, seed=0, variant=variant, registry=args.registry)
    return generate(root, scale=args.scale, seed=0, variant=variant)


def bench_shape(shape: str, work: Path, args: argparse.Namespace) -> list[dict]:
    """Measure one depot shape; print its table; return its rows for the README."""
    base, variant = work / f"{shape}-base", work / f"{shape}-variant"
    t = time.perf_counter()
    stats = make_shape(shape, base, 0, args)
    make_shape(shape, variant, 1, args)
    small = sum(1 for p in base.rglob("*") if p.is_file() and not p.is_symlink() and p.stat().st_size < 4096)
    desc = f"{stats['bytes'] / 1e6:.0f} MB / {stats['files']:,} files ({small:,} under 4 KiB)"
    print(f"\n== shape {shape}: {desc} (generated in {time.perf_counter() - t:.1f}s)")
    os.sync()

    sha = min(sha256_tree(base) for _ in range(args.repeat))  # also warms the page cache for every peer
    layouts = args.layouts
    floors, ost = [], []
    pub: dict[str, list[float]] = {lay: [] for lay in layouts}
    repub: dict[str, list[float]] = {lay: [] for lay in layouts}
    first: dict[str, dict] = {}
    for i in range(args.repeat):
        floors.append(sum(publish_floor(base, work / "floor.tar.zst")))
        repo = work / f"{shape}-ostree-{i}"
        shutil.rmtree(repo, ignore_errors=True)
        ost.append(ostree_commit(repo, base, "depot"))
        for lay in layouts:
            site = work / f"{shape}-site-{lay}-{i}"
            shutil.rmtree(site, ignore_errors=True)
            cli(site, "init", "--layout", lay)
            dt, first[lay] = cli(site, "publish", "--name", "bench", "--image", f"x86_64={base}")
            pub[lay].append(dt)
            dt, again = cli(site, "publish", "--name", "bench", "--label", "again", "--image", f"x86_64={base}")
            assert again["new_objects"] == 0, again
            repub[lay].append(dt)
    repo = work / f"{shape}-ostree-{args.repeat - 1}"
    site = work / f"{shape}-site-{layouts[-1]}-{args.repeat - 1}"
    ver = min(cli(site, "verify", "--deep")[0] for _ in range(args.repeat))
    fsck = min(
        timed(lambda: subprocess.run(["ostree", "fsck", f"--repo={repo}"], capture_output=True, check=True))
        for _ in range(args.repeat)
    )

    ostree_commit(repo, variant, "depot")
    rev_b, rev_a = ostree_rev(repo, "depot"), ostree_rev(repo, "depot^")
    n = max(3, args.repeat)
    diff_cli: dict[str, float] = {}
    diff_core: dict[str, float] = {}
    from core.site.diff import diff_releases
    from core.site.site import open_site

    for lay in layouts:
        site = work / f"{shape}-site-{lay}-{args.repeat - 1}"
        _, b = cli(site, "publish", "--name", "bench", "--label", "variant", "--image", f"x86_64={variant}")
        a_id, b_id = first[lay]["release_id"], b["release_id"]
        diff_cli[lay] = min(cli(site, "diff", a_id, b_id, "--files")[0] for _ in range(n))
        s = open_site(site)
        diff_core[lay] = min(timed(lambda: diff_releases(s, a_id, b_id)) for _ in range(n))  # noqa: B023
        s.close()
    odiff = min(ostree_diff(repo, rev_a, rev_b) for _ in range(n))

    OST, S, F = min(ost), sha, min(floors)
    print(f"{'measurement':44} {'seconds':>8} {'ratio':>7}  goal")
    print(f"{'floor: tar | zstd -T0 -3, + sha256 of bytes':44} {F:8.2f}")
    print(f"{'sha256 of every file (1 thread)':44} {S:8.2f}")
    print(f"{'ostree commit (archive, default fsync)':44} {OST:8.2f} {OST / F:7.2f}  (x floor)")
    print(f"{'ostree diff':44} {odiff:8.3f}")
    for lay in layouts:
        P, R = min(pub[lay]), min(repub[lay])
        print(f"{'console publish (first), ' + lay + ' store':44} {P:8.2f} {P / OST:7.2f}  <= 0.30 x ostree commit")
        print(f"{'   ... vs the floor':44} {'':8} {P / F:7.2f}  <= 2.0 x floor")
        print(f"{'   ... vs sha256 of every file':44} {'':8} {P / S:7.2f}")
        print(f"{'console publish (unchanged, cached)':44} {R:8.2f} {R / P:7.2f}  <= 0.20 x first publish")
        print(f"{'   ... vs the floor':44} {'':8} {R / F:7.2f}")
        d = diff_cli[lay]
        print(f"{'console diff --files (CLI, incl. start-up)':44} {d:8.3f} {d / odiff:7.2f}  <= 1.0 x ostree diff")
        print(f"{'core diff_releases (in process)':44} {diff_core[lay]:8.3f} {diff_core[lay] / odiff:7.2f}")
    print(
        f"{'console verify --deep (' + layouts[-1] + ')':44} {ver:8.2f} {ver / fsck:7.2f}  (vs ostree fsck {fsck:.2f}s, no goal)"
    )
    load = round(os.getloadavg()[0], 1)
    rows = []
    for lay in layouts:
        P, R, d, dc = min(pub[lay]), min(repub[lay]), diff_cli[lay], diff_core[lay]
        tag = f", {lay} store" if len(layouts) > 1 else ""
        rows += [
            {
                "what": f"publish {desc}{tag}",
                "result": f"{P:.2f} s = {P / OST:.2f}x `ostree commit` (archive, {OST:.2f} s); {P / F:.2f}x the floor "
                f"({F:.2f} s; ostree {OST / F:.1f}x)",
                "goal": "<= 0.3x; <= 2x floor",
            },
            {
                "what": f"unchanged re-publish ({shape}{tag})",
                "result": f"{R:.2f} s = {R / P:.2f}x first publish; {R / F:.2f}x the floor",
                "goal": "<= 0.2x",
            },
            {
                "what": f"diff base vs 3-package bump ({shape}{tag})",
                "result": f"{dc / odiff:.2f}x `ostree diff` in process; {d / odiff:.2f}x through the CLI "
                f"({d * 1000:.0f} ms vs {odiff * 1000:.0f} ms)",
                "goal": "<= 1.0x",
            },
        ]
    return [dict(r, load=load) for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shapes", default="depot,registry", help="comma-separated: depot, registry")
    ap.add_argument("--scale", type=float, default=1.0, help="scale of the depot shape")
    ap.add_argument("--registry", type=int, default=10_000, help="registry packages of the registry shape")
    ap.add_argument("--registry-scale", type=float, default=0.25, help="depot scale under the registry shape")
    ap.add_argument("--repeat", type=int, default=2, help="fresh stores per measurement; best is kept")
    ap.add_argument("--work", type=Path, default=None, help="work directory (default: a temp dir)")
    ap.add_argument("--rows", type=Path, default=None, help="write README table rows (JSON) here")
    ap.add_argument(
        "--layouts", default="loose,packed", help="store layouts to publish into, comma-separated (loose, packed)"
    )
    args = ap.parse_args()
    args.layouts = [x.strip() for x in args.layouts.split(",") if x.strip()]
    if not args.layouts or set(args.layouts) - {"loose", "packed"}:
        raise SystemExit(f"--layouts: loose and/or packed, not {args.layouts}")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-publish-"))
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    try:
        for shape in [s.strip() for s in args.shapes.split(",") if s.strip()]:
            if shape not in ("depot", "registry"):
                raise SystemExit(f"unknown shape {shape!r} (depot, registry)")
            rows += bench_shape(shape, work, args)
        startup = min(
            timed(
                lambda: subprocess.run(
                    [*CLI, "--help"], capture_output=True, env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO
                )
            )
            for _ in range(3)
        )
        print(f"\n{'console --help (interpreter + imports)':44} {startup:8.3f}")
        print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores: >2 = shared)")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
            os.sync()  # see bench_hydrate: deleted inodes slow every allocation for 1 minute once written back
    if args.rows:
        args.rows.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
