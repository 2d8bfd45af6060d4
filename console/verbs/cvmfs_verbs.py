"""CernVM-FS verbs: ``cvmfs publish|sync|status|gc|init-script``, and the node side of ``--mount``.

Site side (``core.site.cvmfs``): releases published as expanded trees into the configured
``[cvmfs]`` targets through the site's own ``cvmfs_server`` commands; channels follow the store
(``promote``/``rollback`` flip them, ``cvmfs sync`` catches a target up). Node side
(``core.node.mount``): ``node env|smoke|verify --mount DIR`` read a depot in place, read-only.

Exit codes: 0 ok, 1 a target failed (the store pointer stays the truth; ``cvmfs sync`` repairs),
2 bad input, 3 another publish/sync/gc holds the repository, 4 trust failure (node verify).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from console.context import Context, Output
from console.lazy import lazy_import
from console.render import short, size, table

if TYPE_CHECKING:
    from core.node.root import NodeRoot
    from core.trust.signing import TrustSet

cv_publish = lazy_import("core.site.cvmfs.publish")
cv_sync = lazy_import("core.site.cvmfs.sync")
cv_status = lazy_import("core.site.cvmfs.status")
cv_gc = lazy_import("core.site.cvmfs.gc")
cv_layout = lazy_import("core.site.cvmfs.layout")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    cv = sub.add_parser("cvmfs", parents=[common], help="CernVM-FS targets: publish, sync, status, gc, init-script")
    verbs = cv.add_subparsers(dest="cvmfs_verb", metavar="SUBVERB", required=True, parser_class=type(cv))
    repo = argparse.ArgumentParser(add_help=False)
    repo.add_argument("--repo", metavar="R", help="target name, repository name or mount path (default: every target)")

    p = verbs.add_parser("publish", parents=[common, repo], help="publish a release as expanded trees (a transaction)")
    p.add_argument("id", metavar="ID", help="release id or unique prefix")
    p.set_defaults(handler=cmd_publish)

    s = verbs.add_parser("sync", parents=[common, repo], help="bring targets' channels in line with the store")
    s.add_argument("--channel", action="append", metavar="C", help="only this channel (repeatable)")
    s.set_defaults(handler=cmd_sync)

    st = verbs.add_parser("status", parents=[common, repo], help="per target: releases, channel states, revision")
    st.set_defaults(handler=cmd_status)

    g = verbs.add_parser("gc", parents=[common, repo], help="remove releases no channel or keep rule needs")
    g.add_argument("--keep", type=int, default=2, metavar="N", help="recent releases kept per channel (default 2)")
    g.add_argument("--dry-run", action="store_true", help="list what would go, change nothing")
    g.set_defaults(handler=cmd_gc)

    i = verbs.add_parser("init-script", parents=[common], help="print depot-init.sh (as written into the repository)")
    grp = i.add_mutually_exclusive_group()
    grp.add_argument("--repo", metavar="R", help="the script of this target (default: the first)")
    grp.add_argument("--mount", metavar="DIR", help="the script for a depot nodes see at DIR (no site needed)")
    i.set_defaults(handler=cmd_init_script)


# -- site side ------------------------------------------------------------------------------------
def _commands(rows: list[dict[str, Any]]) -> list[str]:
    return [f"  $ {c}" for r in rows for c in r.get("commands", [])]


def cmd_publish(ctx: Context) -> Output:
    rows = [
        cv_publish.publish_release(ctx.site, ctx.args.id, t) for t in cv_layout.find_target(ctx.site, ctx.args.repo)
    ]
    lines = []
    for r in rows:
        if r["state"] == "present":
            lines.append(f"{r['target']}: {short(r['release'])} already present, nothing written")
        else:
            lines.append(f"{r['target']}: published {short(r['release'])} ({r['files']} files, {size(r['bytes'])})")
    return Output(rows, "\n".join(lines + _commands(rows)))


def sync_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line per (target, channel): what ``promote``/``rollback``/``cvmfs sync`` did there."""
    lines = []
    for r in rows:
        where = f"cvmfs {r['target']}: {r['channel']}"
        if not r["ok"]:
            lines.append(f"{where} FAILED: {r['error']} (the store pointer stands; run 'console cvmfs sync')")
        elif r.get("changed"):
            lines.append(f"{where} -> {short(r['release'])} (version {r['version']})")
        elif r["state"] == "in line":
            lines.append(f"{where} already in line (version {r['version']})")
        else:
            lines.append(f"{where}: {r['state']}")
    return lines


def cmd_sync(ctx: Context) -> Output:
    rows = cv_sync.sync(ctx.site, ctx.args.repo, ctx.args.channel)
    failed = any(not r["ok"] for r in rows)
    text = "\n".join(sync_lines(rows) or ["no channels to sync"])
    return Output(rows, text, 1 if failed else 0)


def cmd_status(ctx: Context) -> Output:
    docs = cv_status.status(ctx.site, ctx.args.repo)
    parts = []
    for d in docs:
        head = (
            f"{d['name']}  {d['repo']}  {d['mount']}/{d['prefix']}  revision {d['revision'] if d['revision'] is not None else '-'}"
            f"  {len(d['releases'])} release(s)" + ("  OPEN TRANSACTION" if d["open_transaction"] else "")
        )
        rows = [
            [
                c["channel"],
                c["state"],
                c["store_version"] if c["store_version"] is not None else "-",
                c["target_version"] if c["target_version"] is not None else "-",
                short(c["target_release"]),
                c.get("error", ""),
            ]
            for c in d["channels"]
        ]
        body = table(["CHANNEL", "STATE", "STORE", "TARGET", "RELEASE", "PROBLEM"], rows) if rows else "  no channels"
        parts.append(head + "\n" + body)
    bad = any(c["state"] in ("failed", "behind", "ahead?") for d in docs for c in d["channels"])
    return Output(docs, "\n\n".join(parts), 1 if bad else 0)


def cmd_gc(ctx: Context) -> Output:
    rows = cv_gc.gc(ctx.site, ctx.args.repo, keep=ctx.args.keep, dry_run=ctx.args.dry_run)
    verb = "would remove" if ctx.args.dry_run else "removed"
    lines = [f"{r['target']}: {verb} {len(r['removed'])} release(s), kept {len(r['kept'])}" for r in rows]
    lines += [f"  {short(rid)}" for r in rows for rid in r["removed"]]
    return Output(rows, "\n".join(lines + _commands(rows)))


def cmd_init_script(ctx: Context) -> Output:
    from core.site.cvmfs.initscript import render_init_script
    from core.site.cvmfs.layout import INIT_SCRIPT

    if ctx.args.mount:
        text = render_init_script(ctx.args.mount)
    else:
        target = cv_layout.find_target(ctx.site, ctx.args.repo)[0]
        text = render_init_script(target.node_depot, str(target.node_mount / INIT_SCRIPT))
    return Output({"script": text}, text)


# -- node side (registered by node_verbs) ---------------------------------------------------------
def node_verify(ctx: Context, trust: TrustSet, node: NodeRoot) -> Output:
    """``node verify --mount DIR --channel C [--deep]`` (``node_verbs`` supplies trust and root)."""
    from core.clock import system_clock
    from core.node.mount import verify_mount

    mrel, rows = verify_mount(ctx.args.mount, ctx.args.channel, trust, node, system_clock(), deep=ctx.args.deep)
    ok = all(r["ok"] for r in rows)
    ptr = mrel.pointer
    assert ptr is not None
    doc = {
        "mount": str(mrel.mount),
        "channel": mrel.channel,
        "release": mrel.release.id,
        "version": ptr.version,
        "expires": ptr.expires,
        "deep": ctx.args.deep,
        "images": rows,
        "ok": ok,
    }
    lines = [f"{mrel.channel}: version {ptr.version} -> {short(mrel.release.id)} verified (expires {ptr.expires})"]
    for r in rows:
        lines.append(
            f"  {r['arch']}: " + ("ok" + (" (re-hashed)" if ctx.args.deep else "") if r["ok"] else r["problem"])
        )
    return Output(doc, "\n".join(lines), 0 if ok else 1)


def mount_env(ctx: Context) -> Output:
    from core.node.env import format_env
    from core.node.mount import mount_env as env_of
    from core.node.mount import mount_image

    img = mount_image(ctx.args.mount, ctx.args.channel)
    env = env_of(img)
    return Output(env, format_env(env, ctx.args.shell), notes=[f"console: {img.reason}"] if not ctx.json else [])


def mount_smoke(ctx: Context):  # noqa: ANN201 - a SmokeResult
    from core.node.mount import mount_env as env_of
    from core.node.mount import mount_image, smoke_image
    from core.node.smoke import run_smoke

    img = mount_image(ctx.args.mount, ctx.args.channel)
    return run_smoke(
        None,
        ctx.args.channel,
        baseline=ctx.args.baseline,
        timeout=ctx.args.timeout,
        image=smoke_image(img),
        depot_env=env_of(img),
    )
