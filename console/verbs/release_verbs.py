"""Release verbs: ``publish``, ``releases``, ``show``, ``verify``, ``diff``, ``export``, ``gc``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from console.context import Context, Output
from console.lazy import lazy_import
from console.render import ago, delta, inert, published_in, short, size, table
from core.errors import EXIT_CHECK_FAILED, EXIT_TRUST

audited = lazy_import("core.site.audited")
catalogue = lazy_import("core.site.catalogue")
cvmfs_status = lazy_import("core.site.cvmfs.status")
diff = lazy_import("core.site.diff")
export = lazy_import("core.site.export")
gc = lazy_import("core.site.gc")
publishing = lazy_import("core.site.publish")
verify = lazy_import("core.site.verify")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("publish", parents=[common], help="ingest trees (one per CPU), sign and publish a release")
    p.add_argument("--name", required=True, help="release name, e.g. jetreco")
    p.add_argument(
        "--image",
        action="append",
        required=True,
        metavar="ARCH=DIR",
        help="an image: archspec micro-architecture name = directory (repeat per image)",
    )
    p.add_argument("--label", default="", help="human label, e.g. 2026.11-1")
    p.add_argument("--parent", metavar="ID", help="the release this one follows")
    p.add_argument("--smoke", metavar="CMD", help="smoke command for nodes, e.g. \"julia -e 'using Foo'\"")
    p.add_argument("--smoke-timeout", type=int, default=600, metavar="S")
    _progress_flags(p)
    p.set_defaults(handler=cmd_publish)

    r = sub.add_parser("releases", parents=[common], help="the release catalogue, newest first")
    r.add_argument("--name", help="only releases with this name")
    r.set_defaults(handler=cmd_releases)

    s = sub.add_parser("show", parents=[common], help="one release: metadata, images, packages")
    s.add_argument("id", metavar="ID")
    s.set_defaults(handler=cmd_show)

    v = sub.add_parser("verify", parents=[common], help="check signatures and completeness (and bytes with --deep)")
    v.add_argument("ids", nargs="*", metavar="ID")
    v.add_argument("--all", action="store_true", help="every release (the default when no ID is given)")
    v.add_argument("--deep", action="store_true", help="re-hash every object")
    _progress_flags(v)
    v.set_defaults(handler=cmd_verify)

    d = sub.add_parser("diff", parents=[common], help="compare release A (old) with B (new)")
    d.add_argument("a", metavar="A")
    d.add_argument("b", metavar="B")
    d.add_argument("--files", action="store_true", help="list every changed file")
    d.set_defaults(handler=cmd_diff)

    e = sub.add_parser("export", parents=[common], help="write an image back as a plain tree")
    e.add_argument("id", metavar="ID")
    e.add_argument("--arch", required=True, help="which image")
    e.add_argument("dest", metavar="DIR", type=Path)
    e.set_defaults(handler=cmd_export)

    g = sub.add_parser("gc", parents=[common], help="delete objects that no release references")
    g.add_argument("--dry-run", action="store_true", help="only report what would be deleted")
    g.set_defaults(handler=cmd_gc)


def _progress_flags(p: argparse.ArgumentParser) -> None:
    grp = p.add_mutually_exclusive_group()
    grp.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="progress lines on stderr (default: when stderr is a terminal)",
    )
    grp.add_argument("--no-progress", dest="progress", action="store_false")


class StderrProgress:
    """Throttled one-line progress on stderr: phase, count, bytes, rate."""

    def __init__(self, enabled: bool, interval: float = 0.5) -> None:
        self.enabled = enabled
        self.interval = interval
        self.last = 0.0
        self.t0 = time.perf_counter()

    def __call__(self, phase: str, done: int, total: int, nbytes: int = 0) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < total and now - self.last < self.interval:
            return
        self.last = now
        rate = nbytes / max(now - self.t0, 1e-6)
        sys.stderr.write(f"{phase}: {done}/{total} ({size(nbytes)}, {size(rate)}/s)\n")


def cmd_publish(ctx: Context) -> Output:
    site = ctx.site
    images = publishing.parse_image_args(ctx.args.image)
    prog = StderrProgress(ctx.progress_enabled(), site.config.publish.progress_interval_s)
    res = audited.publish_release(
        site,
        ctx.args.name,
        images,
        label=ctx.args.label,
        parent=ctx.args.parent,
        smoke=publishing.parse_smoke(ctx.args.smoke, ctx.args.smoke_timeout),
        progress=prog,
    )
    text = (
        f"published {res.release_id}\n"
        f"  {inert(res.name)} {inert(res.label)}  images: {', '.join(res.images)}  {res.files} files, {size(res.bytes)}\n"
        f"  new objects: {res.new_objects} ({size(res.new_bytes)}, stored {size(res.stored_bytes)}); "
        f"reused: {res.reused_objects} ({size(res.reused_bytes)}); "
        f"hashed {res.hashed_files}, cached {res.cached_files}; {res.seconds:.2f}s"
    )
    return Output(res.to_json(), text)


def cmd_releases(ctx: Context) -> Output:
    rows = catalogue.list_releases(ctx.site, ctx.args.name)
    data = [dict(r, images=json.loads(r["images"]), signed_by=json.loads(r["signed_by"])) for r in rows]
    now = ctx.site.now()
    text = (
        table(
            ["ID", "NAME", "LABEL", "CREATED", "IMAGES", "SIZE"],
            [
                [short(r["id"]), r["name"], r["label"], ago(r["created"], now), ",".join(r["images"]), size(r["bytes"])]
                for r in data
            ],
            right=[5],
        )
        if data
        else "no releases"
    )
    return Output(data, text)


def cmd_show(ctx: Context) -> Output:
    rel = catalogue.load_release(ctx.site, catalogue.resolve_release(ctx.site, ctx.args.id))
    doc = rel.to_json()
    lines = [
        f"release {rel.id}",
        f"  name     {inert(rel.name)}",
        f"  label    {inert(rel.label)}",
        f"  created  {rel.created} ({ago(rel.created, ctx.site.now())})",
        f"  parent   {rel.parent or '-'}",
        f"  builder  {json.dumps(rel.builder, sort_keys=True)}",
        f"  signed   {', '.join(k[:23] for k in rel.signed_by)}",
    ]
    if ctx.site.config.cvmfs.targets:  # where it is published; without targets, as before
        doc["cvmfs"] = cvmfs_status.release_in_targets(ctx.site, rel.id)
        lines.append(f"  cvmfs    {inert(published_in(doc['cvmfs']))}")
    lines += ["", "images:"]
    lines.append(
        table(
            ["  ARCH", "FILES", "SIZE", "CPU TARGET", "ROOT"],
            [
                ["  " + a, i.files, size(i.bytes), i.cpu_target or "-", short(i.root)]
                for a, i in sorted(rel.images.items())
            ],
            right=[1, 2],
        )
    )
    if rel.packages:
        lines += ["", f"packages ({len(rel.packages)}):"]
        lines += [f"  {p['name']} {p.get('version', '')}" for p in rel.packages]
    if rel.smoke:
        lines += ["", f"smoke: {shlex.join(rel.smoke['command'])} (timeout {rel.smoke.get('timeout_s', 600)}s)"]
    return Output(doc, "\n".join(lines))


def cmd_verify(ctx: Context) -> Output:
    site = ctx.site
    ids = [catalogue.resolve_release(site, i) for i in ctx.args.ids] if ctx.args.ids else site.store.list_release_ids()
    prog = StderrProgress(ctx.progress_enabled())
    report = verify.verify_releases(site, ids, deep=ctx.args.deep, progress=lambda d, t: prog("verify", d, t))
    doc = report.to_json()
    channel_problems: list[str] = []
    try:
        from core.site.channels import verify_channels

        channel_problems = verify_channels(site)
    except ImportError:
        pass
    doc["channels"] = channel_problems
    lines = [p.line() for p in report.problems] + [f"channel {c}" for c in channel_problems]
    mode = "deep" if ctx.args.deep else "fast"
    lines.append(
        f"{mode} verify: {report.releases} release(s), {report.trees} tree(s), {report.objects} object(s): "
        + ("ok" if not lines else f"{len(report.problems) + len(channel_problems)} problem(s)")
    )
    code = 0
    if report.trust_failure or channel_problems:
        code = EXIT_TRUST
    elif report.problems:
        code = EXIT_CHECK_FAILED
    doc["ok"] = code == 0
    return Output(doc, "\n".join(lines), code)


def cmd_diff(ctx: Context) -> Output:
    site = ctx.site
    a, b = catalogue.resolve_release(site, ctx.args.a), catalogue.resolve_release(site, ctx.args.b)
    d = diff.diff_releases(site, a, b)
    doc = d.to_json(files=True)
    lines = [
        f"diff {short(a)} ({inert(d.a.name)} {inert(d.a.label)}) -> {short(b)} ({inert(d.b.name)} {inert(d.b.label)})"
    ]
    for arch in d.images_added:
        lines.append(f"  image added:   {arch}")
    for arch in d.images_removed:
        lines.append(f"  image removed: {arch}")
    for p in d.packages_changed:
        lines.append(f"  package {p['name']}: {p['from']} -> {p['to']}")
    for p in d.packages_added:
        lines.append(f"  package added:   {p['name']} {p.get('version', '')}")
    for p in d.packages_removed:
        lines.append(f"  package removed: {p['name']} {p.get('version', '')}")
    for img in d.images:
        c = img.counts()
        state = (
            "identical"
            if img.same
            else (f"{c['added']} added, {c['removed']} removed, {c['modified']} modified, {delta(img.delta)}")
        )
        lines.append(f"  image {img.arch}: {state}")
        if ctx.args.files:
            for ch in img.changes:
                lines.append(f"    {ch.change[0].upper()} {ch.path}  {delta(ch.delta)}")
    if not ctx.args.files:
        for img in doc["images"]:
            img.pop("files")
    return Output(doc, "\n".join(lines))


def cmd_export(ctx: Context) -> Output:
    site = ctx.site
    info = export.export_image(site, catalogue.resolve_release(site, ctx.args.id), ctx.args.arch, ctx.args.dest)
    return Output(
        info,
        f"exported {short(info['release'])} {info['arch']} to {info['dest']}: "
        f"{info['files']} files, {size(info['bytes'])}",
    )


def cmd_gc(ctx: Context) -> Output:
    site = ctx.site
    rep = gc.collect(
        site,
        dry_run=ctx.args.dry_run,
        on_wait=lambda: print("gc: waiting for running publishes to finish", file=sys.stderr, flush=True),
    )
    verb = "would delete" if rep.dry_run else "deleted"
    return Output(
        rep.to_json(),
        f"{verb} {rep.unreferenced} unreferenced object(s), {size(rep.freed_bytes)}; "
        f"{rep.reachable} reachable from {rep.releases} release(s)"
        + (f"; {rep.temp_files} stray temp file(s)" if rep.temp_files else "")
        + (
            f"; {len(rep.orphan_pack_files)} orphan pack file(s), {size(rep.pack_freed_bytes)}"
            if rep.orphan_pack_files
            else ""
        ),
    )
