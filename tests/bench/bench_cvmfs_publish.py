"""Benchmark: ``console cvmfs publish`` into the stand-in repository vs ``cp -a``; depot-init.sh per call.

    python tests/bench/bench_cvmfs_publish.py [--scale S] [--repeat N] [--calls N]

One synthetic Julia depot (``depotgen.generate``; scale 1.0 = ~500 MB / ~8k files), published to
a site store first (not measured), then, measured in the same run:

* ``console cvmfs publish`` (real CLI, interpreter start-up and the stand-in ``cvmfs_server``
  transaction/publish included) into a fresh read-only bind-mounted repository: the expanded tree
  from the store objects, ``release.json``, ``depot.env``, ``.cvmfscatalog``, ``depot-init.sh``;
* ``cp -a`` of the same tree onto the same file system: the floor for writing an expanded tree;
* ``sh depot-init.sh --which CHANNEL`` (dash), the image choice a job start pays, per call.

Goals (issue 13): publish <= 1.5x ``cp -a``; depot-init.sh <= 20 ms per call. Needs root (bind mounts).
CernVM-FS itself is not involved: a real ``cvmfs_server publish`` adds its own hashing and catalogue work.
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

from fixtures.cvmfs import make_repo, remove_repo  # noqa: E402

CLI = [sys.executable, "-m", "console.cli", "--headless"]


def cli(site: Path, *args: str) -> tuple[float, object]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t0 = time.perf_counter()
    proc = subprocess.run([*CLI, "--site", str(site), *args, "--json"], capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"console {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return dt, json.loads(proc.stdout)


def set_targets(site: Path, targets: list[dict]) -> None:
    import tomllib

    import tomli_w

    cfg = site / "console.toml"
    data = tomllib.loads(cfg.read_text())
    data.setdefault("cvmfs", {})["targets"] = targets
    cfg.write_text(tomli_w.dumps(data))
    cfg.chmod(0o600)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=2, help="fresh repositories per measurement; best is kept")
    ap.add_argument("--calls", type=int, default=200, help="depot-init.sh calls timed")
    ap.add_argument("--work", type=Path, default=None, help="work directory (default: a temp dir)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_cvmfs_publish: needs root (the stand-in repository is a bind mount)")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-cvmfs-"))
    base = work / "base"
    t = time.perf_counter()
    stats = generate(base, scale=args.scale, seed=0, variant=0)
    print(f"depot: {stats['files']} files, {stats['bytes'] / 1e6:.0f} MB (generated in {time.perf_counter() - t:.1f}s)")
    site = work / "site"
    cli(site, "init")
    _, doc = cli(site, "publish", "--name", "bench", "--image", f"x86_64={base}", "--image", f"x86_64_v3={base}")
    rid = doc["release_id"]  # type: ignore[index]

    cps, pubs = [], []
    repo = None
    for i in range(args.repeat):
        dest = work / f"cp-{i}"
        subprocess.run(["sync"], check=True)
        t0 = time.perf_counter()
        subprocess.run(["cp", "-a", str(base), str(dest)], check=True)
        subprocess.run(["cp", "-a", str(base), str(dest) + "-v3"], check=True)  # two images, as published
        cps.append(time.perf_counter() - t0)
        shutil.rmtree(dest)
        shutil.rmtree(str(dest) + "-v3")

        if repo is not None:
            remove_repo(repo)
        root = work / f"repo-{i}"
        repo = make_repo(root)
        target = {
            "repo": repo.name,
            "mount": str(repo.mount),
            "prefix": "depot",
            **{
                step: repo.command(words)
                for step, words in (
                    ("transaction", "transaction {repo}"),
                    ("publish", "publish {repo}"),
                    ("abort", "abort -f {repo}"),
                )
            },
        }
        set_targets(site, [target])
        subprocess.run(["sync"], check=True)
        dt, _ = cli(site, "cvmfs", "publish", rid)
        pubs.append(dt)
    cp, pub = min(cps), min(pubs)
    print(f"cvmfs publish (2 images): {pub:.2f}s = {pub / cp:.2f}x cp -a of the same trees ({cp:.2f}s)  goal <= 1.5x")

    assert repo is not None
    cli(site, "promote", rid, "--channel", "production", "--create")
    script = repo.mount / "depot-init.sh"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
    for shell in [s for s in ("dash", "bash") if shutil.which(s)]:
        subprocess.run([shell, str(script), "--which", "production"], check=True, capture_output=True, env=env)
        t0 = time.perf_counter()
        for _ in range(args.calls):
            subprocess.run([shell, str(script), "--which", "production"], check=True, capture_output=True, env=env)
        per = (time.perf_counter() - t0) / args.calls
        print(
            f"depot-init.sh --which under {shell}: {per * 1000:.1f} ms per call (process start included)  goal <= 20 ms"
        )
    remove_repo(repo)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
        subprocess.run(["sync"], check=True)


if __name__ == "__main__":
    main()
