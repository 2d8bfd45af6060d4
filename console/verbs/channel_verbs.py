"""Channel verbs: ``promote``, ``rollback``, ``refresh``, ``channels``, ``channels repair``, ``history``.

``promote``/``rollback``/``refresh`` print the five keys scripts rely on with ``--json``
(``channel``, ``version``, ``release``, ``previous``, ``action``); a lost race exits 3
("channel moved meanwhile"), a pointer that fails verification exits 4.
"""

from __future__ import annotations

import argparse

from console.context import Context, Output
from console.lazy import lazy_import
from console.render import channel_update_text, short, table, time_left
from core.errors import EXIT_TRUST

ch = lazy_import("core.site.channels")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("promote", parents=[common], help="point a channel at a release (new pointer version)")
    p.add_argument("id", metavar="ID", help="release id or unique prefix (at least 4 hex)")
    p.add_argument("--channel", required=True, help="channel name, e.g. production")
    p.add_argument("--reason", default="", help="why (recorded in the pointer and the audit log)")
    p.add_argument(
        "--create",
        action="store_true",
        help="create the channel if the site does not have it (without it an unknown channel is bad input)",
    )
    p.add_argument(
        "--override",
        metavar="REASON",
        help="waive the channel policy's unmet checks where the policy permits (audited, written into the pointer)",
    )
    p.set_defaults(handler=cmd_promote)

    r = sub.add_parser(
        "rollback",
        parents=[common],
        help="roll a channel back to a release it carried before (a new, roll-forward version)",
    )
    r.add_argument("--channel", required=True)
    grp = r.add_mutually_exclusive_group()
    grp.add_argument("--to", metavar="ID", help="the release to go back to (id or unique prefix)")
    grp.add_argument("--steps", type=int, metavar="N", help="go back N distinct releases (default 1)")
    r.add_argument("--reason", default="")
    r.set_defaults(handler=cmd_rollback)

    f = sub.add_parser(
        "refresh", parents=[common], help="re-sign current pointers as a new version with a fresh expiry (for cron)"
    )
    f.add_argument("--channel", action="append", metavar="C", help="only this channel (repeatable)")
    f.add_argument("--reason", default="", help="why (recorded in the pointer and the audit log; default 'refresh')")
    f.set_defaults(handler=cmd_refresh)

    c = sub.add_parser("channels", parents=[common], help="channels, their releases and time left")
    c.set_defaults(handler=cmd_channels)
    csub = c.add_subparsers(dest="channels_verb", metavar="create|repair", required=False)
    cc = csub.add_parser("create", parents=[common], help="create a channel: version 1 pointing at a release")
    cc.add_argument("channel", metavar="CHANNEL")
    cc.add_argument("id", metavar="ID", help="the release it carries (id or unique prefix)")
    cc.add_argument("--reason", default="", help="recorded in the pointer and the audit log")
    cc.set_defaults(handler=cmd_create)
    rp = csub.add_parser(
        "repair",
        parents=[common],
        help="un-wedge a channel: re-issue its pointer above every version seen (dry run unless --yes)",
    )
    rp.add_argument("channel", metavar="CHANNEL")
    rp.add_argument("--release", metavar="ID", help="the release the new pointer carries (default: the current one)")
    rp.add_argument("--reason", default="", help="recorded in the pointer and the audit log")
    rp.add_argument("--yes", action="store_true", help="issue the pointer (without it: only show what would be done)")
    rp.set_defaults(handler=cmd_repair)

    h = sub.add_parser("history", parents=[common], help="every pointer version ever issued on a channel")
    h.add_argument("--channel", required=True)
    h.set_defaults(handler=cmd_history)


def cmd_promote(ctx: Context) -> Output:
    u = ch.promote(
        ctx.site, ctx.args.id, ctx.args.channel, ctx.args.reason, create=ctx.args.create, override=ctx.args.override
    )
    return with_cvmfs(ctx, u, Output(u.to_json(), channel_update_text(u)))


def cmd_create(ctx: Context) -> Output:
    u = ch.create_channel(ctx.site, ctx.args.channel, ctx.args.id, ctx.args.reason)
    p = u.pointer
    text = f"{p.channel}: created at {short(p.release)} (version {p.version}; expires {p.expires})"
    return with_cvmfs(ctx, u, Output(u.to_json(), text))


def cmd_rollback(ctx: Context) -> Output:
    u = ch.rollback(ctx.site, ctx.args.channel, to=ctx.args.to, steps=ctx.args.steps, reason=ctx.args.reason)
    return with_cvmfs(ctx, u, Output(u.to_json(), channel_update_text(u)))


def with_cvmfs(ctx: Context, u, out: Output) -> Output:  # noqa: ANN001 - a ChannelUpdate
    """After the store pointer: flip the channel in every configured CVMFS target (``[cvmfs]``);
    one line per target, exit 1 if one failed (the store pointer stands; ``console cvmfs sync``)."""
    if not ctx.site.config.cvmfs.targets or u.proposal is not None:  # a proposal moved nothing
        return out
    from console.verbs.cvmfs_verbs import sync_lines
    from core.site.cvmfs.sync import after_channel_update

    rows = after_channel_update(ctx.site, u.pointer.channel)
    out.data["cvmfs"] = [{k: v for k, v in r.items() if k != "commands"} for r in rows]
    out.text = "\n".join([out.text, *sync_lines(rows)])
    if any(not r["ok"] for r in rows):
        out.exit_code = 1
    return out


def cmd_refresh(ctx: Context) -> Output:
    for name in ctx.args.channel or []:  # a name the site does not have is bad input, nothing refreshed
        ch.require_known_channel(ctx.site, name)
    done, failed = ch.refresh_all(ctx.site, ctx.args.channel, ctx.args.reason)
    if ctx.args.channel and len(ctx.args.channel) == 1 and failed:
        raise failed[0][1]  # the one channel asked for: its error is the answer (one error document)
    data = [u.to_json() for u in done] + [{"channel": c, "error": str(e), "exit_code": e.exit_code} for c, e in failed]
    lines = [channel_update_text(u) for u in done] or ([] if failed else ["no channels to refresh"])
    notes = [f"console: {c}: {e}" for c, e in failed]
    code = max((e.exit_code for _, e in failed), default=0)
    return Output(data, "\n".join(lines), code, notes)


def cmd_channels(ctx: Context) -> Output:
    rows = ch.channel_status(ctx.site)
    if not rows:
        return Output(rows, "no channels (create one with 'console channels create NAME ID')")
    text = table(
        ["CHANNEL", "VERSION", "RELEASE", "ACTION", "ACTOR", "ISSUED", "TIME LEFT"],
        [
            [
                r["channel"],
                r["version"] if r["version"] is not None else "-",
                short(r["release"]),
                r["action"] or "-",
                r["actor"] or "-",
                r["issued"] or "-",
                time_left(r["seconds_left"]),
            ]
            for r in rows
        ],
        right=[1],
    )
    problems = [f"{r['channel']}: {r['problem']}" for r in rows if r["problem"]]
    if problems:
        text += "\n\n" + "\n".join(problems)
    return Output(rows, text, EXIT_TRUST if problems else 0)


def cmd_repair(ctx: Context) -> Output:
    a = ctx.args
    plan = ch.repair(ctx.site, a.channel, a.release, yes=a.yes, reason=a.reason)
    if not plan.problems:
        return Output(plan.to_json(), f"{a.channel}: healthy (version {plan.current_version}); nothing to repair")
    found = "\n".join(f"  {p}" for p in plan.problems)
    if plan.done:
        assert plan.pointer is not None
        head = f"{a.channel}: repaired: version {plan.version} now carries {short(plan.release)}"
        return Output(plan.to_json(), f"{head}\nit had:\n{found}")
    text = (
        f"{a.channel}: wedged:\n{found}\nwould issue version {plan.version} (above every version seen, "
        f"{plan.highest}) carrying {short(plan.release)} ({plan.action}); run again with --yes to do it"
    )
    return Output(plan.to_json(), text)


def cmd_history(ctx: Context) -> Output:
    rows = ch.history_rows(ctx.site, ctx.args.channel)
    text = table(
        ["VERSION", "ACTION", "RELEASE", "PREVIOUS", "ACTOR", "REASON", "ISSUED", "STATUS"],
        [
            [
                r["version"],
                r.get("action", "-"),
                short(r.get("release")),
                short(r.get("previous")),
                r.get("actor", "-"),
                r.get("reason") or "-",
                r.get("issued", "-"),
                r["problem"] or "ok",
            ]
            for r in rows
        ],
        right=[0],
    )
    return Output(rows, text)
