"""A demo site for a first look (``console demo``): releases, channels with history, an inventory.

Everything goes through the same core functions an operator's commands use (``Site.init``,
``publish``, ``channels.promote``/``rollback``); only the inventory, smoke results and past builds
(which need real nodes and compilers) are written as database rows, in the shapes the fleet and
build code record.

The site tells a short story over three weeks: four ``jetreco`` releases of a synthetic Julia depot
(images for ``x86_64``, ``x86_64_v3`` and, from the third release on, ``zen4``) and two
``geant-tools`` releases; ``testing`` and ``production`` channels, with production rolled back
after a bad release; about fifty nodes of mixed CPUs (including Arm nodes no image fits) with
smoke results.

Determinism: with a ``seed`` the signing key is derived from it, and the story runs on a clock of
its own (the site's clock, which also stamps audit rows), so release ids, channel pointers and every
row depend only on ``(seed, now)``; snapshot tests rely on this. Set ``$DEPOT_CONSOLE_NOW`` to pin
``now``.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import core.site.channels as channels
from core.demo.synthdepot import generate
from core.durable import atomic_write
from core.site.inventory import (
    ChannelTarget,
    Classified,
    images_for,
    node_row,
    record_smoke_runs,
    smoke_row,
    upsert_nodes,
)
from core.site.publish import publish
from core.site.site import Site, format_time, system_clock
from core.trust.signing import ROLES, TrustSet, load_key

DEMO_SCALE = 0.003
CHANNELS = ("testing", "production")

# (name, label, depot variant, images, day offset from the start of the story)
RELEASES = [
    ("jetreco", "2026.10-1", 0, ("x86_64", "x86_64_v3"), 0),
    ("geant-tools", "11.2-1", 0, ("x86_64", "x86_64_v3"), 1),
    ("jetreco", "2026.10-2", 1, ("x86_64", "x86_64_v3"), 5),
    ("jetreco", "2026.11-1", 2, ("x86_64", "x86_64_v3", "zen4"), 10),
    ("geant-tools", "11.2-2", 1, ("x86_64", "x86_64_v3", "zen4"), 12),
    ("jetreco", "2026.11-2", 3, ("x86_64", "x86_64_v3", "zen4"), 16),
]

# (node set prefix, count, micro-architecture, vendor, model, cpus, memory GiB)
FLEET = [
    ("node", 16, "zen3", "AuthenticAMD", "AMD EPYC 7763 64-Core Processor", 128, 512),
    ("node", 12, "icelake", "GenuineIntel", "Intel(R) Xeon(R) Platinum 8358 CPU @ 2.60GHz", 64, 256),
    ("node", 8, "haswell", "GenuineIntel", "Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz", 24, 128),
    ("node", 6, "zen4", "AuthenticAMD", "AMD EPYC 9654 96-Core Processor", 192, 768),
    ("gpu", 4, "skylake_avx512", "GenuineIntel", "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz", 40, 384),
    ("arm", 4, "neoverse_v1", "ARM", "Neoverse-V1", 64, 128),
]


@dataclass
class DemoSummary:
    """What ``build_demo`` made, for the CLI's summary and the tests."""

    root: Path
    releases: list[str] = field(default_factory=list)
    channels: dict[str, str] = field(default_factory=dict)
    nodes: int = 0
    smoke_runs: int = 0
    builds: int = 0
    key_id: str = ""
    now: str = ""

    def to_json(self) -> dict:
        return {
            "site": str(self.root),
            "releases": self.releases,
            "channels": self.channels,
            "nodes": self.nodes,
            "smoke_runs": self.smoke_runs,
            "builds": self.builds,
            "signing_key": self.key_id,
            "now": self.now,
        }


class _StoryClock:
    """A settable clock: the demo moves it forward between actions."""

    def __init__(self, start: datetime) -> None:
        self.t = start

    def __call__(self) -> datetime:
        return self.t


def _install_seeded_key(site: Site, seed: int) -> str:
    """Replace the freshly generated signing key by one derived from ``seed``, and trust only it."""
    private = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"depot-console demo key {seed}".encode()).digest())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = site.signing_key_path
    atomic_write(path, pem, 0o600, durable=False)
    key = load_key(path)
    trust = TrustSet()
    trust.add(key.public, ROLES, name="demo")
    site._trust = trust
    site._key = key
    site.save_trust()
    return key.id


def _image_tree(base: Path, dest: Path, arch: str) -> None:
    """One image of a release: the shared depot with compiled files specific to ``arch``.

    Real per-CPU images share sources, registry and artifacts and differ in ``compiled/``; here the
    compiled files keep their sizes and change their first bytes, which is enough for distinct objects.
    """
    shutil.copytree(base, dest, symlinks=True)
    compiled = dest / "compiled"
    for path in sorted(compiled.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = bytearray(path.read_bytes())
            tag = hashlib.sha256(f"{arch}:{path.relative_to(dest)}".encode()).digest()
            data[8 : 8 + len(tag)] = tag[: max(0, min(len(tag), len(data) - 8))]
            path.write_bytes(bytes(data))


class _Story:
    """Runs the demo's timeline against a site whose clock it controls."""

    def __init__(self, site: Site, clock: _StoryClock, start: datetime) -> None:
        self.site = site
        self.clock = clock
        self.start = start

    def at(self, days: float, actor: str) -> None:
        self.clock.t = self.start + timedelta(days=days)
        self.site.config.set("site", "actor", actor)


def build_demo(
    root: Path,
    *,
    seed: int = 0,
    now: datetime | None = None,
    scale: float = DEMO_SCALE,
    progress: Callable[[str], None] | None = None,
) -> DemoSummary:
    """Create the demo site at ``root`` (must not hold a site yet); return what it holds."""
    say = progress or (lambda _msg: None)
    end = now or system_clock()
    start = (end - timedelta(days=20)).replace(hour=9, minute=0, second=0, microsecond=0)
    root = Path(root)
    say(f"creating site at {root}")
    Site.init(root, name="demo").close()
    clock = _StoryClock(start)
    site = Site(root, clock=clock)
    story = _Story(site, clock, start)
    try:
        summary = DemoSummary(root=root, now=format_time(end))
        summary.key_id = _install_seeded_key(site, seed)
        site.state.audit_log.rewrite(
            "init",
            time=format_time(start),
            actor="admin@ops",
            target="demo",
            detail=json.dumps({"store": "store", "key": summary.key_id}),
        )
        ids = _publish_releases(story, seed, scale, say)
        summary.releases = ids
        summary.channels = _channel_story(story, ids)
        story.at(20, "")
        clock.t = end
        summary.nodes, summary.smoke_runs = _inventory(site, seed, summary.channels, ids, end)
        summary.builds = _builds(site, ids, end)
        site.config.set("site", "actor", "")
        site.config.save()
        return summary
    finally:
        site.close()


def _publish_releases(story: _Story, seed: int, scale: float, say: Callable[[str], None]) -> list[str]:
    ids: list[str] = []
    parents: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="depot-demo-") as tmp:
        for i, (name, label, variant, archs, day) in enumerate(RELEASES):
            say(f"publishing {name} {label} ({', '.join(archs)})")
            base = Path(tmp) / f"{i}-base"
            generate(base, scale=scale, seed=seed + (0 if name == "jetreco" else 7), variant=variant)
            images = {}
            for arch in archs:
                dest = Path(tmp) / f"{i}-{arch}"
                _image_tree(base, dest, arch)
                images[arch] = dest
            story.at(day + 0.1, "ci-builder@build01")
            res = publish(
                story.site,
                name,
                images,
                label=label,
                parent=parents.get(name),
                builder={"kind": "julia", "tool_version": "1.10.4"},
                smoke={"command": ["julia", "-e", "using JetReconstruction"], "timeout_s": 600},
            )
            story.site.audit("publish", res.release_id, "ok", {"name": name, "label": label})
            parents[name] = res.release_id
            ids.append(res.release_id)
    return ids


def _channel_story(story: _Story, ids: list[str]) -> dict[str, str]:
    """Promotions through testing to production, and one production rollback after a bad release."""
    jet = [ids[0], ids[2], ids[3], ids[5]]
    steps = [
        (0.2, "alice@ops", "promote", jet[0], "testing", "first jetreco depot"),
        (1.0, "alice@ops", "promote", jet[0], "production", "smoke ok on all x86 nodes"),
        (5.2, "alice@ops", "promote", jet[1], "testing", "JetReconstruction patch release"),
        (6.0, "bob@ops", "promote", jet[1], "production", "two days on testing, no issues"),
        (10.2, "alice@ops", "promote", jet[2], "testing", "adds a zen4 image"),
        (11.0, "bob@ops", "promote", jet[2], "production", "zen4 nodes joined the cluster"),
        (11.3, "bob@ops", "rollback", None, "production", "start-up regressions on icelake nodes"),
        (16.2, "alice@ops", "promote", jet[3], "testing", "fixes the icelake regression"),
    ]
    for day, actor, action, rid, channel, reason in steps:
        story.at(day, actor)
        if action == "promote":
            channels.promote(story.site, rid, channel, reason, create=True)
        else:
            channels.rollback(story.site, channel, reason=reason)
    return {r["channel"]: r["release"] for r in channels.channel_status(story.site)}


def _inventory(site: Site, seed: int, current: dict[str, str], ids: list[str], now: datetime) -> tuple[int, int]:
    """About fifty nodes in the rows a fleet check records (``inventory.node_row`` shape), with a
    smoke run each where an image fits; a few stragglers on an older release, a few unreachable."""
    rng = random.Random(f"depot-demo-fleet:{seed}")
    images_of = {rid: site.state.releases.images(rid) or () for rid in ids}
    targets = [ChannelTarget(ch, rid, images_of[rid]) for ch, rid in sorted(current.items())]
    nodes, smokes = [], []
    number = {"node": 0, "gpu": 0, "arm": 0}
    for prefix, count, arch, vendor, model, cpus, mem in FLEET:
        for _ in range(count):
            number[prefix] += 1
            name = f"{prefix}{number[prefix]:03d}" if prefix == "node" else f"{prefix}{number[prefix]:02d}"
            seen = now - timedelta(minutes=rng.randrange(2, 90))
            on_testing = prefix == "node" and number[prefix] <= 4
            images = images_for(arch, [t for t in targets if on_testing or t.channel == "production"])
            node_channels: dict[str, dict] = {}
            for ch, pick in images.items():
                rid = pick["release"]
                if ch == "production" and rng.random() < 0.08:
                    rid = ids[0]  # a straggler still on an older release
                if pick["image"]:
                    node_channels[ch] = {
                        "release": rid,
                        "arch": pick["image"],
                        "target": f"../releases/{rid[7:]}/{pick['image']}",
                        "exists": True,
                    }
            status = "ok"
            detail = ", ".join(f"{ch}={v['image'] or 'none'}" for ch, v in sorted(images.items()))
            if prefix == "node" and rng.random() < 0.05:
                status, detail = "unreachable", "ssh: connect to host port 22: Connection timed out"
                seen = now - timedelta(hours=rng.randrange(20, 60))
            probe = {
                "cpuinfo": {"vendor": vendor, "model_name": model},
                "cpus": cpus,
                "memory": mem << 30,
                "os": {"pretty_name": "Rocky Linux 9.4 (Blue Onyx)"},
                "channels": node_channels,
            }
            nodes.append(node_row(name, probe, Classified(arch, vendor, ""), images, status, detail, format_time(seen)))
            prod = node_channels.get("production")
            if prod and status == "ok":
                baseline = round(rng.uniform(38, 95), 1)
                ok = not (arch == "icelake" and rng.random() < 0.25)
                wall = round(rng.uniform(1.8, 5.5), 2) if ok else round(baseline * rng.uniform(0.9, 1.05), 1)
                doc = {
                    "release": prod["release"],
                    "image": prod["arch"],
                    "ok": ok,
                    "wall_s": wall,
                    "baseline_s": baseline,
                    "reduction": round(1 - wall / baseline, 3),
                    "exit_code": 0 if ok else 1,
                }
                smokes.append(
                    smoke_row(
                        name,
                        doc,
                        "" if ok else "Rejecting cache file: CPU target mismatch",
                        format_time(seen - timedelta(minutes=1)),
                    )
                )
    upsert_nodes(site.state, nodes)
    record_smoke_runs(site.state, smokes)
    return len(nodes), len(smokes)


def _builds(site: Site, ids: list[str], now: datetime) -> int:
    """Three past build jobs with their logs: two that published, one that failed."""
    logs = site.root / "logs"
    logs.mkdir(exist_ok=True)
    jobs = [
        ("succeeded", ids[3], "", now - timedelta(days=10, hours=3), ("x86_64", "x86_64_v3", "zen4")),
        (
            "failed",
            "",
            "julia exited 1 on zen4: Rejecting cache file (CPU target mismatch)",
            now - timedelta(days=5, hours=2),
            ("zen4",),
        ),
        ("succeeded", ids[5], "", now - timedelta(days=4, hours=3), ("x86_64", "x86_64_v3", "zen4")),
    ]
    rows = []
    for n, (status, release, error, created, targets) in enumerate(jobs, start=1):
        log = logs / f"build-{n}.log"
        lines = [f"[{a}] precompiling 42 packages for {a}" for a in targets]
        lines += [f"[{a}] done in {30 + 7 * i}s" for i, a in enumerate(targets)]
        lines.append(f"published {release}" if release else f"error: {error}")
        log.write_text("\n".join(lines) + "\n")
        rows.append(
            {
                "id": n,
                "status": status,
                "builder": "julia",
                "source": "examples/jetreco/Project.toml",
                "targets": json.dumps(list(targets)),
                "options": "{}",
                "created": format_time(created),
                "started": format_time(created + timedelta(seconds=5)),
                "finished": format_time(created + timedelta(minutes=14)),
                "release": release,
                "log_path": str(log),
                "pid": 0,
                "error": error,
                "actor": "ci-builder@build01",
                "name": "jetreco",
                "label": f"build{n}-{created:%Y%m%d}",
                "publish": 1,
                "step": "finishing" if release else "building",
            }
        )
    site.state.builds.upsert_all(rows)
    return len(rows)
