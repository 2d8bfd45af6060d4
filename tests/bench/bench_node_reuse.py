"""Benchmark: what an incremental hydrate pays to trust the objects it reuses (issue 12 item 13).

    python tests/bench/bench_node_reuse.py [--objects N] [--mbytes M] [--rounds R]

A node cache like the hydrate benchmark's depot (default 7,616 objects, 500 MB, log-normal sizes),
every object hard-linked by an image. Interleaved rounds time the two ways of deciding that a
linked object may be reused: the seal check against ``cache/objects.ledger`` plus the ledger's
rewrite at the end of the hydrate (what the node does), and re-hashing every object (the
alternative). The page cache is warm, which favours re-hashing: a real node wrote its large
objects with ``O_DIRECT`` and would read them from disk.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO))

from core.model.digest import digest_bytes  # noqa: E402
from core.node.hydrate.cache import cached_ok, read_ledger, write_ledger  # noqa: E402
from core.node.root import NodeRoot, cache_name  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=7616)
    ap.add_argument("--mbytes", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-reuse-"))
    try:
        node = NodeRoot(work / "node").ensure()
        rnd = random.Random(1)
        sizes = [int(rnd.lognormvariate(0, 1.6) * 1000) + 1 for _ in range(args.objects)]
        scale = args.mbytes * 1_000_000 / sum(sizes)
        sizes = [max(1, int(s * scale)) for s in sizes]
        blob = os.urandom(max(sizes) + args.objects)
        (work / "image").mkdir()
        objs = []
        for i, size in enumerate(sizes):
            data = blob[i : i + size]
            digest = digest_bytes(data)
            path = node.object_path(digest)
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
            os.chmod(path, 0o444)
            os.link(path, work / "image" / str(i))
            objs.append((digest, path, size))
        names = {cache_name(d) for d, _, _ in objs}
        write_ledger(node, names)
        for r in range(args.rounds):
            t0 = time.perf_counter()
            ledger = read_ledger(node)
            assert all(cached_ok(p, d, s, ledger, cache_name(d)) for d, p, s in objs)
            t1 = time.perf_counter()
            write_ledger(node, names)
            t2 = time.perf_counter()
            assert all(cached_ok(p, d, s) for d, p, s in objs)
            t3 = time.perf_counter()
            print(
                f"round {r}: seal check {t1 - t0:.3f} s + ledger rewrite {t2 - t1:.3f} s = {t2 - t0:.3f} s; "
                f"re-hash {t3 - t2:.3f} s ({sum(sizes) / 1e6:.0f} MB, {len(objs)} objects)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
