"""Node verbs (run on a node, or through ``fleet``): ``node probe|hydrate|env|smoke|status``.

A node needs no console database: the trust set comes from ``--trust FILE`` (the JSON printed by
``console keys export``) or the node config, else from a site (``--site``); the store from
``--store`` or the node config, else the site's. The node root is ``--root``, else the node
config's ``root``, else ``$DEPOT_NODE_ROOT``, else ``~/.local/share/depot-node`` (``core.node.root``).

Exit codes: 0 ok, 1 fetch/verify failure or failed smoke, 2 bad input, 4 trust failure (replayed,
expired or badly signed pointer or release).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import BadInput, DepotError
from core.node.root import NodeConfig, NodeRoot

if TYPE_CHECKING:
    from core.trust.signing import TrustSet

from console.context import Context, Output
from console.render import inert, short, size, warm_change


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument(
        "--root",
        metavar="DIR",
        help="node root (default: node config, else $DEPOT_NODE_ROOT, else ~/.local/share/depot-node)",
    )
    shared.add_argument("--trust", metavar="FILE", help="trust set JSON from 'console keys export' (instead of --site)")

    node = sub.add_parser("node", parents=[common], help="node side: probe, hydrate, env, smoke, status")
    verbs = node.add_subparsers(dest="node_verb", metavar="SUBVERB", required=True, parser_class=type(node))

    p = verbs.add_parser("probe", parents=[common, shared], help="this node's facts (CPU, memory, OS, channels)")
    p.set_defaults(handler=cmd_probe)

    h = verbs.add_parser(
        "hydrate", parents=[common, shared], help="fetch, verify and switch current/CHANNEL to the channel's release"
    )
    h.add_argument("--store", metavar="PATH|URL", help="store path or URL(s), comma-separated mirrors")
    h.add_argument("--channel", required=True)
    h.add_argument("--release", metavar="ID", help="hydrate this release instead of the channel's pointer")
    h.add_argument("--arch", metavar="IMAGE", help="use this image (override the CPU-based choice)")
    h.add_argument("--cpu", metavar="UARCH", help="treat this node's CPU as this archspec micro-architecture")
    h.add_argument("--keep", type=int, metavar="N", help="images kept per channel, current included (default 3)")
    h.add_argument("--workers", type=int, metavar="N", help="parallel downloads (default: the node's CPUs, 2 to 8)")
    grp = h.add_mutually_exclusive_group()
    grp.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="one stderr line per fetched object (default: throttled lines on a terminal)",
    )
    grp.add_argument("--no-progress", dest="progress", action="store_false")
    h.set_defaults(handler=cmd_hydrate)

    e = verbs.add_parser("env", parents=[common, shared], help="shell exports for the hydrated depot (eval them)")
    e.add_argument("--channel", required=True)
    e.add_argument("--shell", choices=("sh", "fish", "json"), default="sh")
    e.add_argument("--mount", metavar="DIR", help="a depot read in place (CVMFS: /cvmfs/REPO/PREFIX), not hydrated")
    e.set_defaults(handler=cmd_env)

    s = verbs.add_parser("smoke", parents=[common, shared], help="run the release's smoke command with the depot env")
    s.add_argument("--channel", required=True)
    s.add_argument("--baseline", action="store_true", help="also run it cold and report the reduction")
    s.add_argument("--timeout", type=float, metavar="S", help="seconds (default: the manifest's timeout_s)")
    s.add_argument("--mount", metavar="DIR", help="smoke the depot read in place from DIR (nothing written there)")
    s.set_defaults(handler=cmd_smoke)

    v = verbs.add_parser(
        "verify", parents=[common, shared], help="verify a channel of a depot read in place: pointer, release, marks"
    )
    v.add_argument("--mount", required=True, metavar="DIR", help="the depot directory, e.g. /cvmfs/REPO/depot")
    v.add_argument("--channel", required=True)
    v.add_argument("--deep", action="store_true", help="also re-hash every image against the release's Merkle root")
    v.set_defaults(handler=cmd_verify)

    st = verbs.add_parser("status", parents=[common, shared], help="current release per channel, cache, marks")
    st.set_defaults(handler=cmd_status)


# -- shared helpers -------------------------------------------------------------------------
def _config(ctx: Context) -> NodeConfig:
    return NodeConfig.load(getattr(ctx.args, "root", None))


def _has_site(ctx: Context) -> bool:
    from core.site.config import CONFIG_NAME

    return bool(getattr(ctx.args, "site", None)) or (ctx.site_dir / CONFIG_NAME).exists()


def load_trust_file(path: str) -> TrustSet:
    """A trust set from the JSON of ``console keys export``."""
    from core.trust.signing import TrustSet

    try:
        doc = json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise BadInput(f"trust file {path} not found") from None
    except (OSError, ValueError) as exc:
        raise BadInput(f"trust file {path}: not readable JSON ({exc})") from None
    return TrustSet.from_config(doc)


def _trust(ctx: Context, cfg: NodeConfig) -> TrustSet:
    path = getattr(ctx.args, "trust", None) or cfg.trust
    if path:
        return load_trust_file(path)
    if _has_site(ctx):
        return ctx.site.trust
    raise BadInput("no trust set: pass --trust FILE (from 'console keys export') or --site DIR")


def _store(ctx: Context, cfg: NodeConfig):
    from core.store import open_store

    location = getattr(ctx.args, "store", None) or cfg.store
    proxies = cfg.proxies or None
    if not location and _has_site(ctx):
        location = ctx.site.store_location
        proxies = proxies or ctx.site.config.http.proxies or None
    if not location:
        raise BadInput("no store: pass --store PATH|URL (or set store in the node config)")
    return open_store(
        location,
        proxies=proxies,
        timeout_s=cfg.timeout_s,
        retries=cfg.retries,
        deadline_s=cfg.deadline_s,
        mutable_max_age_s=cfg.mutable_max_age_s,
    )


class CliProgress:
    """Hydrate progress on stderr: per object (``--progress``) or throttled lines (terminal)."""

    def __init__(self, mode: str | None, interval: float = 0.5) -> None:
        self.mode = mode
        self.interval = interval
        self.total = self.total_bytes = self.done = self.done_bytes = 0
        self.t0 = self.last = time.perf_counter()

    def _write(self, line: str) -> None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def phase(self, text: str) -> None:
        if self.mode:
            self._write(f"hydrate: {text}")

    def start_objects(self, count: int, nbytes: int) -> None:
        self.total, self.total_bytes = count, nbytes
        self.t0 = time.perf_counter()

    def object_done(self, digest: str, nbytes: int) -> None:
        self.done += 1
        self.done_bytes += nbytes
        if not self.mode:
            return
        now = time.perf_counter()
        if self.mode == "throttled" and self.done < self.total and now - self.last < self.interval:
            return
        self.last = now
        rate = self.done_bytes / max(now - self.t0, 1e-6)
        head = (
            f"object {self.done}/{self.total} {short(digest)} {size(nbytes)}"
            if self.mode == "objects"
            else f"objects {self.done}/{self.total}"
        )
        self._write(f"{head} ({size(self.done_bytes)} of {size(self.total_bytes)}, {size(rate)}/s)")


# -- verbs ----------------------------------------------------------------------------------
def cmd_probe(ctx: Context) -> Output:
    from core.arch import host_microarch
    from core.node.probe import run_probe

    cfg = _config(ctx)
    doc = run_probe(str(cfg.root))
    try:
        uarch = host_microarch()
    except Exception:  # archspec cannot classify every CPU; the probe stays useful without it
        uarch = "unknown"
    cpu = doc["cpuinfo"]
    lines = [
        f"{doc['hostname']}  {doc['machine']}  {uarch}",
        f"  cpu      {cpu['vendor'] or cpu['implementer']} {cpu['model_name']} ({doc['cpus']} cpus)",
        f"  memory   {size(doc['memory'])}",
        f"  os       {doc['os'].get('pretty_name', '')} (kernel {doc['os'].get('kernel', '')})",
        f"  python   {doc['python']}",
    ]
    for ch, info in sorted(doc["channels"].items()):
        lines.append(
            f"  channel  {ch}: {short(info['release'])} {info['arch']}" + ("" if info["exists"] else " (missing)")
        )
    return Output(doc, "\n".join(lines))


def _progress_mode(ctx: Context) -> str | None:
    flag = getattr(ctx.args, "progress", None)
    if flag is True:
        return "objects"
    if flag is None and sys.stderr.isatty():
        return "throttled"
    return None


def cmd_hydrate(ctx: Context) -> Output:
    from core.node.hydrate.result import describe_failure
    from core.node.hydrate.run import hydrate

    cfg = _config(ctx)
    node = NodeRoot(cfg.root)
    a = ctx.args
    trust = _trust(ctx, cfg)
    store = None
    try:
        store = _store(ctx, cfg)
        res = hydrate(
            store,
            trust,
            node,
            a.channel,
            release=a.release,
            arch=a.arch or cfg.arch,
            cpu=a.cpu,
            keep=a.keep or cfg.keep,
            workers=a.workers or cfg.workers,
            progress=CliProgress(_progress_mode(ctx)),
        )
    except DepotError as exc:
        exc.message = describe_failure(exc, node, a.channel)
        exc.args = (exc.message,)
        raise
    finally:
        if store is not None:
            store.close()
    lines = [
        f"{res.channel}: {res.release} image {res.image} ({inert(res.reason)})",
        f"  fetched {res.fetched_objects} objects ({size(res.fetched_bytes)}"
        + (f", {size(res.transferred_bytes)} transferred" if res.transferred_bytes is not None else "")
        + f") and {res.fetched_trees} trees; reused {res.reused_objects} ({size(res.reused_bytes)}); "
        f"{res.files} files, {size(res.bytes)}; {res.seconds:.2f}s",
    ]
    if res.switched:
        lines.append(
            f"  current/{res.channel} -> {res.path}" + (f" (was {short(res.previous)})" if res.previous else "")
        )
    else:
        lines.append(f"  current/{res.channel} already at {short(res.release)} {res.image}")
    if res.pruned:
        lines.append(f"  pruned {len(res.pruned)} image(s): {', '.join(res.pruned)}")
    return Output(res.to_json(), "\n".join(lines))


def cmd_env(ctx: Context) -> Output:
    from core.node.env import format_env, image_env, node_image, shell_env

    if getattr(ctx.args, "mount", None):
        from console.verbs.cvmfs_verbs import mount_env

        return mount_env(ctx)
    node = NodeRoot(_config(ctx).root)
    env = shell_env(node, image_env(node, node_image(node, ctx.args.channel)))
    return Output(env, format_env(env, ctx.args.shell))


def cmd_smoke(ctx: Context) -> Output:
    from core.node.smoke import run_smoke

    if getattr(ctx.args, "mount", None):
        from console.verbs.cvmfs_verbs import mount_smoke

        res = mount_smoke(ctx)
    else:
        node = NodeRoot(_config(ctx).root)
        res = run_smoke(node, ctx.args.channel, baseline=ctx.args.baseline, timeout=ctx.args.timeout)
    return Output(res.to_json(), smoke_text(res), exit_code=0 if res.ok else 1)


def smoke_text(res: Any) -> str:
    """The human text of a ``SmokeResult``: the command as it pastes (``shlex.join``), timings,
    the start-up change against the cold baseline (a slower warm start reads as a regression)."""
    verdict = "ok" if res.ok else f"FAILED ({res.problem})"
    text = [
        f"smoke {verdict}: {shlex.join(res.command)}",
        f"  {res.channel}: {short(res.release)} {res.image} on {res.node}; exit {res.exit_code}, {res.wall_s:.3f}s",
    ]
    if res.baseline_s is not None:
        red = f", {warm_change(res.reduction)}" if res.reduction is not None else ""
        text.append(f"  cold baseline {res.baseline_s:.3f}s (exit {res.baseline_exit_code}){red}")
    if res.rejected_caches:
        text.append(
            "  rejected caches: " + ", ".join(f"{r['package']} ({r['cache_file']})" for r in res.rejected_caches)
        )
    if res.fingerprint:
        text.append(f"  modules {res.fingerprint['count']}, fingerprint {short(res.fingerprint['digest'])}")
    if res.output_tail and not res.ok:
        text += ["  output:"] + ["    " + ln for ln in res.output_tail.splitlines()]
    return "\n".join(text)


def cmd_verify(ctx: Context) -> Output:
    from console.verbs.cvmfs_verbs import node_verify

    cfg = _config(ctx)
    return node_verify(ctx, _trust(ctx, cfg), NodeRoot(cfg.root))


def cmd_status(ctx: Context) -> Output:
    cfg = _config(ctx)
    node = NodeRoot(cfg.root)
    state = node.load_state() if node.state_path.exists() else {"marks": {}, "history": []}
    channels = {}
    for ch in node.channels():
        cur = node.current(ch)
        last = next((h for h in reversed(state["history"]) if h.get("channel") == ch), {})
        channels[ch] = {
            "release": cur.release,
            "arch": cur.arch,
            "path": str(cur.path),
            "exists": cur.path.is_dir(),
            "since": last.get("time"),
            "version": last.get("version"),
        }
    images = []
    if node.releases.is_dir():
        for rel in sorted(node.releases.iterdir()):
            if rel.is_dir() and len(rel.name) == 64:
                images += [
                    f"sha256:{rel.name}/{img.name}"
                    for img in sorted(rel.iterdir())
                    if img.is_dir() and not img.name.startswith(".")
                ]
    doc = {
        "root": str(node.root),
        "channels": channels,
        "marks": state["marks"],
        "cache": node.cache_usage(),
        "images": images,
        "keep": cfg.keep,
    }
    lines = [f"node root {node.root}"]
    for ch, c in channels.items():
        lines.append(
            f"  {ch}: {short(c['release'])} {c['arch']} (version {c['version']}, since {c['since']})"
            + ("" if c["exists"] else " MISSING")
        )
    if not channels:
        lines.append("  no channel hydrated yet")
    for ch, m in sorted(state["marks"].items()):
        lines.append(f"  mark {ch}: version {m['version']} ({short(m['digest'])})")
    u = doc["cache"]
    lines.append(
        f"  cache {u['objects']} objects, {u['trees']} trees, {size(u['bytes'])}; {len(images)} image(s) on disk"
    )
    return Output(doc, "\n".join(lines))
