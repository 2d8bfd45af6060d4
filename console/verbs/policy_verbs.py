"""Policy and co-signing verbs: ``policy show``, ``approve``, ``proposals`` (issue 16).

``policy show`` lists, per channel with a policy or a co-signing threshold, the checks a promote
needs, what ``--override`` may waive, the signatures needed and the keys that may give them, and
the canary set. ``approve ID --channel C [--key PATH]`` co-signs the channel's open proposal
(exit 3 when it is stale, 4 for a key that cannot count: untrusted, revoked, or one that signed it
already); the pointer is published when distinct trusted keys meet the threshold.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from console.context import Context, Output
from console.lazy import lazy_import
from console.render import inert, short, table

policy = lazy_import("core.site.policy")
proposals = lazy_import("core.site.proposals")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("policy", parents=[common], help="promotion policies per channel ([channels.<name>])")
    ps = p.add_subparsers(dest="policy_verb", metavar="show|check", required=True)
    sh = ps.add_parser("show", parents=[common], help="per channel: required checks, signers, canary set")
    sh.set_defaults(handler=cmd_policy_show)
    ck = ps.add_parser("check", parents=[common], help="evaluate a release against a channel's policy (no change)")
    ck.add_argument("id", metavar="ID")
    ck.add_argument("--channel", required=True)
    ck.set_defaults(handler=cmd_policy_check)

    a = sub.add_parser("approve", parents=[common], help="co-sign a channel's pending proposal with another key")
    a.add_argument("id", metavar="ID", help="the release the proposal carries (id or unique prefix)")
    a.add_argument("--channel", required=True)
    a.add_argument("--key", type=Path, metavar="PATH", help="the approver's private key (default: the site's key)")
    a.set_defaults(handler=cmd_approve)

    pr = sub.add_parser("proposals", parents=[common], help="pointers waiting for co-signatures")
    pr.set_defaults(handler=cmd_proposals)


def cmd_policy_show(ctx: Context) -> Output:
    rows = policy.show(ctx.site)
    if not rows:
        return Output(rows, "no channel has a policy or a co-signing threshold ([channels.<name>] in console.toml)")
    lines = []
    for r in rows:
        lines.append(f"{r['channel']}:")
        lines.append(f"  requires   {', '.join(r['require']) or '-'}")
        if r["startup_margin"] is not None:
            lines.append(f"  startup    no worse than the current release by more than {r['startup_margin']:.0%}")
        if r["soak"]:
            lines.append(f"  soak       {r['soak']['hours']:g} h on {inert(r['soak']['channel'])}")
        lines.append(f"  override   {', '.join(r['override']) or 'not permitted'}")
        lines.append(f"  signatures {r['signatures']} of {len(r['signers'])} channel key(s)")
        lines.append(f"  canary     {inert(r['canary']) or '-'}")
    return Output(rows, "\n".join(lines))


def cmd_policy_check(ctx: Context) -> Output:
    from core.site.catalogue import resolve_release

    site = ctx.site
    ev = policy.evaluate(site, resolve_release(site, ctx.args.id), ctx.args.channel)
    text = table(
        ["CHECK", "STATE", "DETAIL"],
        [[c.name, "ok" if c.ok else "UNMET", inert(c.detail)] for c in ev.checks],
    )
    return Output(ev.to_json(), text or f"{ctx.args.channel}: no checks required", 1 if ev.unmet else 0)


def cmd_approve(ctx: Context) -> Output:
    from core.trust.signing import load_key

    site = ctx.site
    key = load_key(ctx.args.key) if ctx.args.key else site.signing_key
    res = proposals.approve(site, ctx.args.id, ctx.args.channel, key)
    prop = res.proposal
    if res.published is not None:
        p = res.published
        text = (
            f"{p.channel}: published version {p.version} ({p.action} {short(p.release)}) with "
            f"{len(prop.signed_by)} of {prop.threshold} signatures"
        )
    else:
        missing = prop.threshold - len(prop.signed_by)
        text = (
            f"{prop.channel}: signed; {len(prop.signed_by)} of {prop.threshold} signatures, "
            f"{missing} more needed before version {prop.pointer.version} is published"
        )
    return Output(res.to_json(), text)


def cmd_proposals(ctx: Context) -> Output:
    rows = [p.to_json() for p in proposals.list_proposals(ctx.site)]
    if not rows:
        return Output(rows, "no proposals")
    text = table(
        ["CHANNEL", "STATE", "VERSION", "RELEASE", "SIGNED", "PROPOSED BY", "EXPIRES"],
        [
            [
                r["channel"],
                r["state"],
                r["version"],
                short(r["release"]),
                f"{r['signatures']}/{r['threshold']}",
                inert(r["proposed_by"]),
                r["expires"],
            ]
            for r in rows
        ],
    )
    return Output(rows, text)
