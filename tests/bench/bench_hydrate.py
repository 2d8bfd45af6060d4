"""Benchmark: hydrate over HTTP (nginx on loopback) vs ``ostree pull`` + ``ostree checkout -U -H``.

    python tests/bench/bench_hydrate.py [--scale S] [--repeat N] [--workers W]

Both peers start from the same synthetic depot (``depotgen.generate``, scale 1.0 = ~500 MB / ~8k
files) served by the same nginx (``fixtures.nginx.start_nginx``): the depot store under
``/depot/store/``, an archive-mode OSTree repo of the same tree under ``/depot/ostree/``. Each run
starts from an empty node (fresh root / fresh bare-user repo and checkout, all removed only at the
end: see the comment there); the hydrate side is the real CLI in a subprocess (interpreter
start-up included) with the node's default workers, ostree keeps its default fsync and the hydrate
its one ``syncfs``; the peers take turns going first. Reported: best-of-N wall times and their
ratio (goal <= 0.5).

Incremental: variant 1 of the depot (3 packages bumped) is published and promoted (and committed
on the OSTree branch), the node that holds variant 0 hydrates again (and the OSTree node pulls and
checks out again, for a time comparison with no goal), and the bytes it fetched (file objects +
tree objects, uncompressed, from ``--json``; plus bytes on the wire) are compared with the bytes
that changed (distinct new file contents of variant 1). Goal: fetched <= 1.1x changed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path[:0] = [str(REPO), str(HERE.parent), str(HERE)]

from depotgen import generate  # noqa: E402
from peers import ostree_commit, ostree_pull_checkout  # noqa: E402

from core.node.root import force_rmtree  # noqa: E402
from core.site.channels import promote  # noqa: E402
from core.site.publish import publish  # noqa: E402
from core.site.site import Site  # noqa: E402

from fixtures.nginx import start_nginx  # noqa: E402


def file_digests(root: Path) -> dict[str, int]:
    """digest -> size of every regular file under ``root``."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            if not os.path.islink(p):
                with open(p, "rb") as f:
                    out[hashlib.sha256(f.read()).hexdigest()] = os.path.getsize(p)
    return out


def hydrate_cli(root: Path, url: str, trust: Path, workers: int | None) -> tuple[float, dict]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [
        sys.executable,
        "-m",
        "console.cli",
        "--headless",
        "node",
        "hydrate",
        "--root",
        str(root),
        "--store",
        url,
        "--trust",
        str(trust),
        "--channel",
        "production",
        "--json",
    ]
    if workers:
        cmd += ["--workers", str(workers)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"hydrate failed: {proc.stderr.strip()}")
    return wall, json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=0.2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, help="hydrate's --workers (default: the node's own default)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-hydrate-"))
    try:
        srv = work / "srv"
        v0, v1 = work / "v0", work / "v1"
        stats0 = generate(v0, args.scale, 0, 0)
        generate(v1, args.scale, 0, 1)
        site = Site.init(work / "site", store=str(srv / "store"))
        r0 = publish(site, "bench", {"x86_64": v0}, label="v0").release_id
        promote(site, r0, "production", create=True)
        ostree_commit(srv / "ostree", v0, "v0")
        trust = work / "trust.json"
        trust.write_text(json.dumps(site.trust.to_config()))

        # Both peers start on a written-back file system: the setup's ~1.5 GB of dirty data would
        # otherwise be flushed during the runs, and ext4 keeps skipping inodes deleted in the last
        # minute (six while their inode-table block is dirty) in every allocation, which is what
        # an earlier run's clean-up leaves (measured: one image's 2,417 mkdirs took 0.1 s on a
        # settled file system, 1.3-1.8 s right after a clean-up).
        os.sync()
        with start_nginx(work / "nginx", srv) as server:
            store_url, ostree_url = server.url + "store/", server.url + "ostree"
            ours, peer, doc = [], [], {}
            for i in range(args.repeat):
                # Peers alternate which goes first, so conditions that drift during the runs (see
                # above) do not always favour the same one.
                for side in ("ours", "ostree") if i % 2 == 0 else ("ostree", "ours"):
                    if side == "ours":
                        wall, doc = hydrate_cli(work / f"node{i}", store_url, trust, args.workers)
                        ours.append(wall)
                    else:
                        peer.append(
                            ostree_pull_checkout(ostree_url, work / f"ostree-node{i}", "v0", work / f"checkout{i}")
                        )
            # Nothing is removed before the end: deleting thousands of inodes just before a run
            # makes ext4's inode allocator skip "recently deleted" ones for minutes, slowing
            # whichever peer runs next (measured: mkdir of one image's 2,417 directories went
            # from 0.1 s to 1.3-1.8 s).
            full = {
                "hydrate_s": round(min(ours), 3),
                "ostree_s": round(min(peer), 3),
                "ratio": round(min(ours) / min(peer), 3),
                "runs_hydrate": [round(x, 3) for x in ours],
                "runs_ostree": [round(x, 3) for x in peer],
                "objects": doc["fetched_objects"],
                "bytes": doc["fetched_bytes"],
                "transferred": doc["transferred_bytes"],
            }

            r1 = publish(site, "bench", {"x86_64": v1}, label="v1", parent=r0).release_id
            promote(site, r1, "production", create=True)
            ostree_commit(srv / "ostree", v1, "v0")  # the branch moves on, as the channel does
            old, new = file_digests(v0), file_digests(v1)
            changed = sum(size for d, size in new.items() if d not in old)
            last = args.repeat - 1
            wall, inc = hydrate_cli(work / f"node{last}", store_url, trust, args.workers)
            peer_inc = ostree_pull_checkout(ostree_url, work / f"ostree-node{last}", "v0", work / "checkout-v1")
            fetched = inc["fetched_bytes"] + inc["tree_bytes"]
            incremental = {
                "hydrate_s": round(wall, 3),
                "ostree_s": round(peer_inc, 3),
                "time_ratio": round(wall / peer_inc, 3),
                "changed_bytes": changed,
                "fetched_bytes": fetched,
                "file_bytes": inc["fetched_bytes"],
                "tree_bytes": inc["tree_bytes"],
                "transferred": inc["transferred_bytes"],
                "objects": inc["fetched_objects"],
                "trees": inc["fetched_trees"],
                "ratio": round(fetched / changed, 4),
            }
        report = {
            "scale": args.scale,
            "files": stats0["files"],
            "bytes": stats0["bytes"],
            "full": full,
            "incremental": incremental,
        }
        print(json.dumps(report, indent=2))
        print(
            f"full hydrate {full['hydrate_s']}s vs ostree pull+checkout {full['ostree_s']}s: "
            f"ratio {full['ratio']} (goal <= 0.5)"
        )
        print(
            f"incremental: fetched {fetched} bytes for {changed} changed bytes: ratio {incremental['ratio']} "
            f"(goal <= 1.1); {incremental['hydrate_s']}s vs ostree {incremental['ostree_s']}s "
            f"(ratio {incremental['time_ratio']}, no goal)"
        )
    finally:
        site_obj = locals().get("site")
        if site_obj is not None:
            site_obj.close()
        if not args.keep:
            force_rmtree(work)
            os.sync()  # write the deleted inodes back now: the next run's allocations skip them for 1 minute, not 6
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
