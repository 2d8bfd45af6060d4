"""Benchmark: a fleet hydrating one release through one Squid, against the same fleet direct from nginx.

    python tests/bench/bench_fleet_hydrate.py [--nodes 50] [--scale 0.05] [--parallel 4] [--no-direct]

One synthetic depot (``depotgen.generate``) is published to a store served by nginx with the shipped
config (``console serve-config nginx``); a real Squid runs the shipped site-cache config
(``console serve-config squid``, memory cache). ``--nodes`` node roots hydrate the channel through
the Squid (``proxies`` in each node.toml), ``--parallel`` at a time (the real CLI in subprocesses).
Reported: the origin's bytes (``$body_bytes_sent`` in nginx's access log) over one image's stored
bytes (goal <= 1.1), how often each immutable path was fetched from the origin, and the total wall
time against the same number of hydrates direct from nginx (no goal: on one loopback host the cache
is one more hop).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path[:0] = [str(REPO), str(HERE.parent), str(HERE)]

from depotgen import generate  # noqa: E402

from core.node.root import force_rmtree  # noqa: E402
from core.site.channels import promote  # noqa: E402
from core.site.publish import publish  # noqa: E402
from core.site.site import Site  # noqa: E402

from fixtures.nginx import start_nginx  # noqa: E402
from fixtures.squid import start_squid  # noqa: E402

MUTABLE = ("index.json", "store.json")


def hydrate_cli(root: Path, url: str, trust: Path, proxy: str | None) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    if proxy:
        (root / "node.toml").write_text(f"proxies = [{proxy!r}]\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env = {k: v for k, v in env.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    cmd = [sys.executable, "-m", "console.cli", "--headless", "node", "hydrate", "--root", str(root)]
    cmd += ["--store", url, "--trust", str(trust), "--channel", "production", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"hydrate failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def is_immutable(path: str) -> bool:
    rel = path.split("/depot/", 1)[-1]
    return not (rel in MUTABLE or (rel.startswith("channels/") and rel.count("/") == 1))


def fleet(n: int, parallel: int, work: Path, url: str, trust: Path, proxy: str | None) -> tuple[float, list[dict]]:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        docs = list(pool.map(lambda i: hydrate_cli(work / f"node{i}", url, trust, proxy), range(n)))
    return time.perf_counter() - t0, docs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=50)
    ap.add_argument("--scale", type=float, default=0.05)
    ap.add_argument("--parallel", type=int, default=4, help="hydrates running at once (default 4)")
    ap.add_argument("--no-direct", action="store_true", help="skip the direct-from-nginx comparison")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    site = None
    try:
        tree = work / "v0"
        stats = generate(tree, args.scale, 0, 0)
        site = Site.init(work / "site", store=str(work / "srv"))
        rid = publish(site, "bench", {"x86_64": tree}, label="v0").release_id
        promote(site, rid, "production", create=True)
        trust = work / "trust.json"
        trust.write_text(json.dumps(site.trust.to_config()))
        with start_nginx(work / "nginx", work / "srv") as origin, start_squid() as cache:
            # One direct hydrate: what one image costs the origin.
            mark = len(origin.requests())
            hydrate_cli(work / "one", origin.url, trust, None)
            single = origin.requests()[mark:]
            one_bytes = sum(r.body_bytes for r in single)
            stored = sum(r.body_bytes for r in single if is_immutable(r.path))

            mark = len(origin.requests())
            cached_s, docs = fleet(args.nodes, args.parallel, work / "cached", origin.url, trust, cache.url)
            through = origin.requests()[mark:]
            direct_s = None
            if not args.no_direct:
                direct_s, _ = fleet(args.nodes, args.parallel, work / "direct", origin.url, trust, None)
        origin_bytes = sum(r.body_bytes for r in through)
        per_path = collections.Counter(r.path for r in through if r.method == "GET" and is_immutable(r.path))
        routes: dict[str, dict[str, int]] = {}
        for d in docs:
            for route, c in (d.get("routes") or {}).items():
                agg = routes.setdefault(route, {"requests": 0, "bytes": 0})
                agg["requests"] += c.get("requests", 0)
                agg["bytes"] += c.get("bytes", 0)
        report = {
            "nodes": args.nodes,
            "parallel": args.parallel,
            "files": stats["files"],
            "image_bytes": stats["bytes"],
            "one_hydrate_origin_bytes": one_bytes,
            "one_image_stored_bytes": stored,
            "fleet_origin_bytes": origin_bytes,
            "fleet_origin_requests": len(through),
            "ratio_to_stored": round(origin_bytes / stored, 4),
            "immutable_paths": len(per_path),
            "immutable_paths_fetched_more_than_once": sum(1 for c in per_path.values() if c > 1),
            "repeated": {
                p: [(r.status, r.body_bytes) for r in through if r.path == p] for p, c in per_path.items() if c > 1
            },
            "mutable_requests": [(r.path, r.status, r.body_bytes) for r in through if not is_immutable(r.path)],
            "fleet_via_squid_s": round(cached_s, 2),
            "fleet_direct_s": None if direct_s is None else round(direct_s, 2),
            "routes_reported_by_nodes": routes,
        }
        print(json.dumps(report, indent=2))
        print(
            f"{args.nodes} hydrates through one Squid: origin sent {origin_bytes} bytes = "
            f"{report['ratio_to_stored']}x one image's stored bytes ({stored}) (goal <= 1.1); "
            f"{cached_s:.1f}s" + (f" vs {direct_s:.1f}s direct from nginx" if direct_s is not None else "")
        )
    finally:
        if site is not None:
            site.close()
        if not args.keep:
            force_rmtree(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
