"""Site verbs: ``init``, ``keys …``, and the headless site summary."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from pathlib import Path

from console.context import Context, Output
from console.lazy import lazy_import
from console.render import ago, inert, short, size, table

keyops = lazy_import("core.site.keys")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("init", parents=[common], help="create a site (config, database, store, signing key)")
    p.add_argument("--store", metavar="PATH|URL", help="store location (default: <site>/store)")
    p.add_argument("--name", help="site name shown in the console header")
    p.add_argument(
        "--layout",
        choices=("loose", "packed"),
        default="loose",
        help="a new local store's layout: 'loose' (every object a file) or 'packed' (trees and files up to "
        "256 KiB only in the release packs: depots of many small files publish about twice as fast; "
        "every reader needs a console that knows the layout) (default: loose)",
    )
    p.set_defaults(handler=cmd_init)

    k = sub.add_parser("keys", parents=[common], help="signing keys and the trust set")
    ks = k.add_subparsers(dest="keys_verb", metavar="ACTION", required=True)
    kl = ks.add_parser("list", parents=[common], help="trusted keys, roles, revocation, the signing key")
    kl.set_defaults(handler=cmd_keys_list)
    kg = ks.add_parser("generate", parents=[common], help="generate a new signing key, trust it and sign with it")
    kg.add_argument("--roles", default="release,channel", help="roles to trust it for (default: release,channel)")
    kg.add_argument("--no-switch", action="store_true", help="trust it but keep signing with the current key")
    kg.set_defaults(handler=cmd_keys_generate)
    kt = ks.add_parser("trust", parents=[common], help="trust a public key (PEM or base64 file)")
    kt.add_argument("file", type=Path)
    kt.add_argument("--roles", default="release,channel")
    kt.add_argument("--name", default="")
    kt.set_defaults(handler=cmd_keys_trust)
    kr = ks.add_parser("revoke", parents=[common], help="revoke a trusted key (signatures by it stop counting)")
    kr.add_argument("key_id", metavar="ID")
    kr_how = kr.add_mutually_exclusive_group()
    kr_how.add_argument(
        "--resign",
        action="store_true",
        help="first re-sign, with the signing key, the releases and channel pointers that count on this key",
    )
    kr_how.add_argument(
        "--force", action="store_true", help="revoke even though releases or channels would no longer verify"
    )
    kr.set_defaults(handler=cmd_keys_revoke)
    ke = ks.add_parser("export", parents=[common], help="print the trust set for nodes (--trust FILE)")
    ke.add_argument(
        "--public",
        nargs="?",
        const="",
        metavar="ID",
        help="print one public key as PEM instead (default: the signing key), for a colleague's 'keys trust FILE'",
    )
    ke.set_defaults(handler=cmd_keys_export)
    krs = ks.add_parser("resign", parents=[common], help="add the current key's signature to existing releases")
    krs.add_argument("ids", nargs="*", metavar="ID")
    krs.add_argument("--all", action="store_true", help="every release in the store")
    krs.set_defaults(handler=cmd_keys_resign)

    a = sub.add_parser("audit", parents=[common], help="the audit log: who did what, when, with what outcome")
    a.add_argument(
        "--since",
        metavar="WHEN",
        help="only rows at or after WHEN: a time (2026-03-01, …T10:00:00Z) or an age (2h, 7d)",
    )
    a.add_argument("--verb", metavar="VERB", help="only this verb and its sub-verbs ('keys' matches 'keys revoke')")
    a.add_argument("--limit", type=int, default=1000, metavar="N", help="at most N rows, newest first (default 1000)")
    a.set_defaults(handler=cmd_audit)


def cmd_init(ctx: Context) -> Output:
    from core.site.site import Site

    site = Site.init(ctx.site_dir, store=ctx.args.store, name=ctx.args.name, layout=ctx.args.layout)
    ctx.use_site(site)
    layout = site.store_layout
    data = {"site": str(site.root), "store": site.store_location, "layout": layout, "key": site.signing_key.id}
    text = f"site created at {site.root}\nstore: {site.store_location} ({layout})\nsigning key: {site.signing_key.id}"
    return Output(data, text)


def cmd_keys_list(ctx: Context) -> Output:
    rows = keyops.list_keys(ctx.site)
    text = table(
        ["KEY ID", "ROLES", "STATE", "NAME"],
        [[r["id"][:23], ",".join(r["roles"]), r["state"], r["name"]] for r in rows],
    )
    return Output(rows, text)


def cmd_keys_generate(ctx: Context) -> Output:
    roles = tuple(r.strip() for r in ctx.args.roles.split(",") if r.strip())
    info = keyops.generate(ctx.site, roles, switch=not ctx.args.no_switch)
    return Output(
        info,
        f"generated key {info['id']} ({info['path']}), trusted for {','.join(roles)}"
        + ("; now signing with it" if info["signing"] else ""),
    )


def cmd_keys_trust(ctx: Context) -> Output:
    roles = tuple(r.strip() for r in ctx.args.roles.split(",") if r.strip())
    info = keyops.trust_file(ctx.site, ctx.args.file, roles, ctx.args.name)
    return Output(info, f"trusted key {info['id']} for {','.join(roles)}")


def cmd_keys_revoke(ctx: Context) -> Output:
    a = ctx.args
    info = keyops.revoke(ctx.site, a.key_id, resign_first=a.resign, force=a.force)
    lines, notes = [], []
    if "resigned" in info:
        lines.append(f"re-signed {len(info['resigned'])} release(s) with {ctx.site.signing_key_id()[:23]}")
    if info.get("refreshed"):
        lines.append("refreshed " + ", ".join(f"{r['channel']} (version {r['version']})" for r in info["refreshed"]))
    lines.append(f"revoked key {info['id']}")
    if "breaks" in info:
        notes.append(
            f"console: warning: revoked key {info['id'][:23]}: {keyops.impact_text(info['breaks'])} no longer "
            "verify (exit 4 here and on the nodes); 'console refresh' re-signs the channels"
        )
    return Output(info, "\n".join(lines), notes=notes)


def cmd_keys_export(ctx: Context) -> Output:
    if ctx.args.public is not None:
        from core.trust.signing import public_pem

        site = ctx.site
        key = site.trust.find(ctx.args.public).public if ctx.args.public else site.signing_key.public
        pem = public_pem(key)
        return Output({"public_pem": pem}, pem)
    doc = ctx.site.trust.to_config()
    import json

    return Output(doc, json.dumps(doc, indent=2, sort_keys=True))


def cmd_keys_resign(ctx: Context) -> Output:
    info = keyops.resign(ctx.site, ctx.args.ids, all_releases=ctx.args.all)
    return Output(
        info, f"re-signed {info['resigned']} release(s) with {info['key'][:23]} ({info['already']} already carried it)"
    )


def summary(ctx: Context) -> Output:
    """The headless answer to a bare ``console``: what is here, in a few lines."""
    from core.site.catalogue import list_releases

    site = ctx.site
    releases = list_releases(site)
    channels = []
    try:
        from core.site.channels import channel_status

        channels = channel_status(site)
    except ImportError:  # channels not available in this build
        pass
    nodes = site.state.nodes.count()
    data = {
        "site": str(site.root),
        "name": site.name,
        "store": site.store_location,
        "signing_key": site.signing_key_id(),
        "releases": len(releases),
        "bytes": sum(r["bytes"] for r in releases),
        "channels": channels,
        "nodes": nodes,
    }
    lines = [
        f"site {site.name} at {site.root}",
        f"store {site.store_location}",
        f"signing key {site.signing_key_id()[:23] or '(none)'}",
        f"{len(releases)} release(s), {size(data['bytes'])}; {nodes} node(s) in inventory",
    ]
    for r in releases[:5]:
        lines.append(f"  {short(r['id'])}  {inert(r['name'])} {inert(r['label'])}  {ago(r['created'])}")
    for c in channels:
        lines.append(f"  channel {c['channel']} -> {short(str(c.get('release', '')))} (v{c.get('version')})")
    return Output(data, "\n".join(lines))


_AGE = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def since_time(text: str, now: datetime) -> str:
    """``--since`` as a console timestamp: an ISO time or date (UTC), or an age back from ``now``."""
    from core.clock import format_time, parse_time
    from core.errors import BadInput

    t = text.strip()
    if t[:-1].isdigit() and t[-1:] in _AGE:
        return format_time(now - timedelta(seconds=int(t[:-1]) * _AGE[t[-1]]))
    try:
        return format_time(parse_time(t))
    except BadInput:
        raise BadInput(
            f"--since {text!r}: give a time (2026-03-01, 2026-03-01T10:00:00Z) or an age (30m, 2h, 7d)"
        ) from None


def cmd_audit(ctx: Context) -> Output:
    a = ctx.args
    since = since_time(a.since, ctx.site.now()) if a.since else None
    rows = ctx.site.state.audit_log.matching(since, a.verb, a.limit)
    if not rows:
        return Output(rows, "no audit rows")
    text = table(
        ["TIME", "ACTOR", "VERB", "TARGET", "OUTCOME"],
        [[r["time"], r["actor"], r["verb"], r["target"], r["outcome"]] for r in rows],
    )
    return Output(rows, text)
