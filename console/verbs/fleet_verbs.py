"""Fleet verbs: ``nodes`` (the inventory) and ``fleet check NODESET`` (probe, hydrate, smoke over SSH).

``fleet check`` prints one line per node as nodes finish, then a summary; with ``--json`` one
document at the end. Exit 1 if any node failed (any status but ``ok``). All work is in
``core.fleet.check`` and ``core.site.inventory``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from console.context import Context, Output
from console.lazy import lazy_import
from console.render import ago, inert, size, table
from core.errors import EXIT_CHECK_FAILED, DepotError

if TYPE_CHECKING:
    from core.fleet.check import NodeCheck
    from core.site.inventory import ChannelTarget

fleetcheck = lazy_import("core.fleet.check")
inventory = lazy_import("core.site.inventory")
nodeset = lazy_import("core.fleet.nodeset")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    n = sub.add_parser("nodes", parents=[common], help="the node inventory and a summary per micro-architecture")
    n.add_argument("--arch", metavar="A", help="only nodes of this micro-architecture")
    n.add_argument(
        "--refresh-from",
        choices=("slurm",),
        help="first read node names, state, features, CPUs and memory from Slurm (scontrol/sinfo)",
    )
    n.add_argument("--partition", metavar="P", help="with --refresh-from slurm: only this partition's nodes")
    n.set_defaults(handler=cmd_nodes)

    f = sub.add_parser("fleet", parents=[common], help="SSH fleet operations")
    fs = f.add_subparsers(dest="fleet_verb", metavar="ACTION", required=True)
    c = fs.add_parser(
        "check",
        parents=[common],
        help="probe nodes over ssh (CPU, image per channel), optionally hydrate and smoke-test",
    )
    c.add_argument(
        "nodeset",
        metavar="NODESET",
        nargs="?",
        help="ClusterShell node set, e.g. 'node[001-128],@gpu' (with --via slurm: optional, Slurm picks by "
        "--partition/--feature)",
    )
    c.add_argument(
        "--via", choices=("ssh", "slurm"), help="transport: ssh per node, or one srun step (default [fleet] transport)"
    )
    c.add_argument("--partition", metavar="P", help="with --via slurm: Slurm partition (srun --partition)")
    c.add_argument("--feature", metavar="F", help="with --via slurm: Slurm node feature(s) (srun --constraint)")
    c.add_argument("--smoke", action="store_true", help="run the channel's smoke test with the node's console")
    c.add_argument("--baseline", action="store_true", help="with --smoke: also run cold, report the reduction")
    c.add_argument("--hydrate", action="store_true", help="hydrate the channel's release on each node first")
    c.add_argument("--channel", metavar="C", help="channel for --smoke / --hydrate")
    c.add_argument(
        "--mount",
        metavar="DIR",
        help="with --smoke: smoke the depot each node reads in place there (CVMFS: /cvmfs/REPO/PREFIX)",
    )
    c.add_argument("--fanout", type=int, metavar="N", help="nodes worked on at once (default [fleet] fanout, 64)")
    c.add_argument("--timeout", type=float, metavar="S", help="deadline per node and ssh call, seconds")
    c.add_argument("--connect-timeout", type=float, metavar="S", help="ssh ConnectTimeout, seconds")
    c.add_argument("--ssh-config", metavar="FILE", help="ssh client config (ssh -F FILE)")
    c.add_argument("--root", metavar="DIR", help="node root on the nodes (default [node] root)")
    c.add_argument("--store", metavar="PATH|URL", help="store location as the nodes see it (--hydrate)")
    c.add_argument("--trust", metavar="FILE", help="trust file on the nodes (--hydrate)")
    c.set_defaults(handler=cmd_fleet_check)


# --------------------------------------------------------------------------- fleet check


def node_line(check: NodeCheck, width: int) -> str:
    """``node01  ok  x86_64_v3  production=x86_64_v3`` — one node, as it finishes."""
    return f"{inert(check.node):<{width}}  {check.status:<20}  {inert(check.arch or '-'):<16}  {inert(check.detail)}".rstrip()


def summary_text(target: str, summary: Mapping[str, Any], seconds: float, interrupted: bool = False) -> str:
    """``11 nodes (SET) in 6.2s, 7 of 11 answered: 6 ok, 1 timeout, …``, then the node set of each
    status and the nodes per micro-architecture. A node that was not reached (or said nothing in
    time) has a status but did not answer (``core.fleet.check.NO_ANSWER``)."""
    counts = ", ".join(f"{n} {s}" for s, n in summary["counts"].items())
    answered = f"{summary['answered']} of {summary['total']} answered"
    head = f"{summary['total']} nodes ({target}) in {seconds:.1f}s, {answered}: {counts or 'none'}"
    lines = [("interrupted: " if interrupted else "") + head]
    lines += [f"  {s}: {nodeset}" for s, nodeset in summary["nodesets"].items()]
    if summary["arches"]:
        lines.append("arch: " + ", ".join(f"{a} {n}" for a, n in summary["arches"].items()))
    return "\n".join(lines)


def cmd_fleet_check(ctx: Context) -> Output:
    a = ctx.args
    site = ctx.site
    fleetcheck.refuse_if_read_only(site, hydrate=a.hydrate)
    options = fleetcheck.options_from_site(
        site,
        transport=a.via,
        partition=a.partition,
        feature=a.feature,
        fanout=a.fanout,
        timeout=a.timeout,
        connect_timeout=a.connect_timeout,
        ssh_config=a.ssh_config,
        root=a.root,
        smoke=a.smoke or None,
        baseline=a.baseline or None,
        hydrate=a.hydrate or None,
        channel=a.channel,
        mount=a.mount,
        store=a.store,
        trust=a.trust,
    )
    nodes = fleetcheck.select_nodes(site, a.nodeset, options)
    target = nodeset.fold(nodes)
    targets = fleetcheck.channel_targets(site)
    width = max(len(n) for n in nodes)
    done: dict[str, NodeCheck] = {}

    def on_result(check: NodeCheck) -> None:
        done[check.node] = check
        if not ctx.json:
            sys.stdout.write(node_line(check, width) + "\n")
            sys.stdout.flush()

    started = time.monotonic()
    interrupted, recorded = True, False
    try:
        import asyncio  # here, not at the top: every console command would pay its ~20 ms import

        asyncio.run(fleetcheck.check_fleet(nodes, options, targets, on_result=on_result))
        interrupted = False
    finally:
        checks = [done[n] for n in nodes if n in done]
        if checks or not interrupted:
            recorded = fleetcheck.record_check(site, target, checks, options, interrupted=interrupted)
    seconds = time.monotonic() - started
    summary = fleetcheck.summarize(checks)
    doc = {
        "nodeset": target,
        "channel": options.channel,
        "smoke": options.smoke,
        "hydrate": options.hydrate,
        "mount": options.mount,
        "transport": options.transport,
        "seconds": round(seconds, 3),
        "summary": summary,
        "nodes": [c.to_json() for c in checks],
        "channels": [_target_json(t) for t in targets],
    }
    notes = [] if recorded else ["read-only: results not recorded"]
    return Output(doc, summary_text(target, summary, seconds), EXIT_CHECK_FAILED if summary["failed"] else 0, notes)


def _target_json(t: ChannelTarget) -> dict[str, Any]:
    return {"channel": t.channel, "release": t.release, "images": list(t.images)}


# --------------------------------------------------------------------------- nodes


def _refresh_from_slurm(ctx: Context) -> dict[str, Any]:
    """``nodes --refresh-from slurm``: Slurm's node records into the inventory (the Slurm columns)."""
    import asyncio

    from core.fleet import slurm

    site = ctx.site
    options = slurm.options_from(site.config.fleet, partition=ctx.args.partition)
    with site.action("nodes refresh", "slurm") as detail:
        found, source = asyncio.run(slurm.inventory(options))
        inventory.upsert_nodes(site.state, inventory.slurm_rows(found.values(), inventory.utcnow_iso()))
        detail.update(source=source, nodes=len(found))
    return {"source": source, "nodes": nodeset.fold(sorted(found)) if found else "", "count": len(found)}


def cmd_nodes(ctx: Context) -> Output:
    site = ctx.site
    notes: list[str] = []
    refreshed = _refresh_from_slurm(ctx) if ctx.args.refresh_from == "slurm" else None
    if refreshed is not None:
        notes.append(f"{refreshed['count']} nodes from Slurm ({refreshed['source']}): {refreshed['nodes'] or 'none'}")
    rows = inventory.node_rows(site.state, ctx.args.arch)
    try:
        targets = fleetcheck.channel_targets(site)
    except DepotError as exc:
        targets = []
        notes.append(f"channels unavailable ({exc}); images as of each node's last check")
    cache = inventory.ImageCache(targets)
    for r in rows:
        if targets:
            r["images"] = inventory.live_images(r["arch"], cache)
    summary = inventory.arch_summary(rows, targets)
    doc = {"nodes": rows, "summary": summary, "channels": [_target_json(t) for t in targets]}
    if refreshed is not None:
        doc["refreshed"] = refreshed
    return Output(
        doc, _nodes_text(rows, summary, [t.channel for t in targets] or _stored_channels(rows), site.now()), 0, notes
    )


def _stored_channels(rows: list[dict[str, Any]]) -> list[str]:
    return sorted({ch for r in rows for ch in r["images"]})


def _nodes_text(rows: list[dict[str, Any]], summary: Mapping[str, Any], channels: list[str], now: Any) -> str:
    if not rows:
        return "no nodes in the inventory: run 'console fleet check NODESET'"
    slurm = any(r.get("slurm_state") for r in rows)  # Slurm columns once Slurm was asked
    headers = ["NODE", "ARCH", "CPUS", "MEM", *[f"IMAGE:{ch}" for ch in channels], "STATUS", "LAST SEEN"]
    if slurm:
        headers += ["SLURM", "FEATURES"]
    body = [
        [
            r["name"],
            (r["arch"] or inventory.UNKNOWN_ARCH) + (" !" if r.get("arch_mismatch") else ""),
            r["cpus"] if r["cpus"] else r.get("slurm_cpus") or "-",
            size(r["memory"]) if r["memory"] else size(r["slurm_memory"]) if r.get("slurm_memory") else "-",
            *[(r["images"].get(ch) or {}).get("image") or "-" for ch in channels],
            r["status"] or "-",
            ago(r["last_seen"], now),
            *(
                [inert(r.get("slurm_state") or "-"), inert(",".join(r.get("slurm_features") or []) or "-")]
                if slurm
                else []
            ),
        ]
        for r in rows
    ]
    lines = [table(headers, body, right=[2, 3])]
    if summary.get("arch_mismatches"):
        lines += ["", "Slurm feature vs measured CPU (!):"]
        lines += [f"  {inert(m['node'])}: {inert(m['detail'])}" for m in summary["arch_mismatches"]]
    lines += ["", "by micro-architecture:"]
    lines.append(
        table(
            ["  ARCH", "NODES", *[f"IMAGE:{ch}" for ch in channels]],
            [
                ["  " + g["arch"], g["count"], *[g["images"].get(ch) or "-" for ch in channels]]
                for g in summary["arches"]
            ],
            right=[1],
        )
    )
    if summary["no_fit"]:
        lines += ["", "no image fits:"]
        grouped: dict[tuple[str, str, str], list[str]] = {}
        for item in summary["no_fit"]:
            grouped.setdefault((item["channel"], item["arch"], item["reason"]), []).append(item["node"])
        for (ch, arch, reason), names in sorted(grouped.items()):
            lines.append(f"  {nodeset.fold(names)} ({arch}) {ch}: {inert(reason)}")
    return "\n".join(lines)
