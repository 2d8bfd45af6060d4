"""Staged rollout verbs (issue 16): ``rollout start|status|next|abort``.

``rollout start ID --channel C --canary NODESET --then 25% --then 100%`` issues the stage pointer
for the canary nodes; ``rollout next`` advances when the current stage's nodes have the evidence
(exit 1 naming each unmet check otherwise); ``--auto`` first runs ``fleet check --hydrate --smoke``
over the stage's nodes, records it, and keeps advancing while the evidence holds; ``rollout abort``
sends every node back to the channel's release. The work is in ``core.site.rollout``.
"""

from __future__ import annotations

import argparse

from console.context import Context, Output
from console.lazy import lazy_import
from console.render import inert, short
from core.errors import CheckFailed

rollout = lazy_import("core.site.rollout")
fleetcheck = lazy_import("core.fleet.check")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    r = sub.add_parser("rollout", parents=[common], help="staged rollout of a release through canary nodes")
    rs = r.add_subparsers(dest="rollout_verb", metavar="start|status|next|abort", required=True)
    st = rs.add_parser("start", parents=[common], help="give a release to the canary nodes of a channel")
    st.add_argument("id", metavar="ID")
    st.add_argument("--channel", required=True)
    st.add_argument("--canary", metavar="NODESET", help="canary nodes (default: [channels.<name>] canary)")
    st.add_argument("--then", action="append", metavar="P%", help="next stages, e.g. --then 25%% --then 100%%")
    st.set_defaults(handler=cmd_start)
    ss = rs.add_parser("status", parents=[common], help="stages, nodes per release, verdicts, what blocks")
    ss.add_argument("--channel")
    ss.set_defaults(handler=cmd_status)
    nx = rs.add_parser("next", parents=[common], help="advance to the next stage when this one has its evidence")
    nx.add_argument("--channel", required=True)
    nx.add_argument(
        "--auto", action="store_true", help="fleet check (hydrate + smoke) each stage's nodes, advance while it holds"
    )
    nx.add_argument("--store", help="with --auto: the store as the nodes reach it")
    nx.add_argument("--trust", help="with --auto: the trust file path on the nodes")
    nx.set_defaults(handler=cmd_next)
    ab = rs.add_parser("abort", parents=[common], help="every node back to the channel's release")
    ab.add_argument("--channel", required=True)
    ab.add_argument("--reason", default="")
    ab.set_defaults(handler=cmd_abort)


def cmd_start(ctx: Context) -> Output:
    site, a = ctx.site, ctx.args
    from core.site.policy import policy_for

    pattern = a.canary or (p.canary if (p := policy_for(site, a.channel)) else "")
    if not pattern:
        from core.errors import BadInput

        raise BadInput("rollout start: give --canary NODESET (or set [channels.<name>] canary)")
    nodes = fleetcheck.expand_nodes(site, pattern)
    ro = rollout.start(site, a.id, a.channel, nodes, a.then or [])
    stages = " -> ".join(s.name for s in ro.stages)
    text = (
        f"{a.channel}: rollout {ro.id} of {short(ro.release)} started (base {short(ro.base)}); "
        f"stage canary: {inert(pattern)}; stages {stages}"
    )
    return Output(ro.to_json(), text)


def _status_text(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        lines.append(
            f"{r['channel']}: rollout {r['id']} of {short(r['release'])} (base {short(r['base'])}) "
            f"{r['state']}, stage {r['stage_name']} ({r['stage'] + 1} of {len(r['stages'])})"
        )
        for rel, nodes in sorted(r["nodes_per_release"].items()):
            label = "unknown" if rel == "unknown" else short(rel)
            lines.append(f"  on {label}: {', '.join(nodes)}")
        for arch, v in r["arches"].items():
            wall = f", start-up {v['wall_s']:.2f}s" if v["wall_s"] is not None else ""
            lines.append(f"  {arch}: {v['ok']} passed, {v['failed']} failed{wall}")
        for b in r["blocking"]:
            lines.append(f"  blocks next stage: {inert(b)}")
    return "\n".join(lines) or "no rollouts"


def cmd_status(ctx: Context) -> Output:
    rows = rollout.status(ctx.site, ctx.args.channel)
    return Output(rows, _status_text(rows))


def _check_stage(ctx: Context, ro) -> None:  # noqa: ANN001 - a Rollout
    """``fleet check --hydrate --smoke`` over the current stage's nodes, recorded."""
    import asyncio

    site, a = ctx.site, ctx.args
    nodes = rollout.stage_nodes(site, ro)
    options = fleetcheck.options_from_site(
        site, hydrate=True, smoke=True, channel=ro.channel, store=a.store, trust=a.trust
    )
    checks = asyncio.run(fleetcheck.check_fleet(nodes, options, fleetcheck.channel_targets(site)))
    from core.fleet.nodeset import fold

    fleetcheck.record_check(site, fold(nodes), checks, options)


def cmd_next(ctx: Context) -> Output:
    site, a = ctx.site, ctx.args
    steps = []
    while True:
        ro = rollout.running(site, a.channel)
        if a.auto:
            _check_stage(ctx, ro)
        try:
            ro, _ev = rollout.advance(site, a.channel)
        except CheckFailed:
            if not steps:
                raise
            break
        steps.append(ro.to_json())
        if not a.auto or ro.state != rollout.RUNNING:
            break
    last = steps[-1]
    text = "\n".join(
        f"{s['channel']}: rollout {s['id']} now at stage {s['stage_name']}"
        + (f"; {s['channel']} promoted to {short(s['release'])}" if s["state"] == rollout.DONE else "")
        for s in steps
    )
    return Output(last if len(steps) == 1 else steps, text)


def cmd_abort(ctx: Context) -> Output:
    ro = rollout.abort(ctx.site, ctx.args.channel, ctx.args.reason)
    text = (
        f"{ro.channel}: rollout {ro.id} of {short(ro.release)} aborted at stage {ro.stages[ro.stage].name}; "
        f"every node follows {short(ro.base)} on its next hydrate"
    )
    return Output(ro.to_json(), text)
