"""Build verbs: ``build``, ``builds``, ``builds log ID [--follow]``, ``builds cancel ID``.

``build`` queues the build and starts its worker process (its own session, see core.build.jobs); in the
foreground (default) it then follows the log on stderr until the build ends, and Ctrl-C cancels
the build. ``--detach`` returns at once with the id.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from console.context import Context, Output
from console.lazy import lazy_import
from console.render import ago, build_summary, short, table
from core.errors import DepotError

jobs = lazy_import("core.build.jobs")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("build", parents=[common], help="build one image per CPU target, then publish")
    p.add_argument(
        "spec", metavar="SPEC", type=Path, help="source spec: Julia project dir, requirements file, or build script"
    )
    p.add_argument("--builder", required=True, help="julia, python, command (or a site builder)")
    p.add_argument("--arch", required=True, metavar="A,B", help="target micro-architectures, comma separated")
    p.add_argument("--publish", action="store_true", help="publish the images as one release when all succeed")
    p.add_argument("--promote", metavar="CHANNEL", help="then point CHANNEL at the release (needs --publish)")
    p.add_argument(
        "--create",
        action="store_true",
        help="with --promote: create CHANNEL if the site does not have it (as 'promote --create'; "
        "without it an unknown channel is bad input)",
    )
    p.add_argument(
        "--override",
        metavar="REASON",
        help="with --promote: waive the channel policy's unmet checks where the policy permits (as 'promote --override')",
    )
    p.add_argument("--name", help="release name (default: the spec's directory name or file stem)")
    p.add_argument("--label", help="release label (default: build<ID>-<YYYYMMDD>)")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="builder option (repeat; list options take one item per occurrence)",
    )
    p.add_argument(
        "--executor",
        choices=("local", "slurm"),
        help="where targets build: here, or one sbatch job each (default [build] executor)",
    )
    p.add_argument("--detach", action="store_true", help="start the build and return its id")
    p.add_argument("--quiet", action="store_true", help="do not echo the build log on stderr")
    p.set_defaults(handler=cmd_build)

    b = sub.add_parser("builds", parents=[common], help="build jobs; 'builds log ID', 'builds cancel ID'")
    b.add_argument("--limit", type=int, default=50, help="newest N builds (default 50)")
    b.add_argument(
        "--status",
        choices=("queued", "running", "succeeded", "failed", "cancelled"),
        help="only builds with this status",
    )
    b.set_defaults(handler=cmd_builds)
    bs = b.add_subparsers(dest="builds_verb", metavar="ACTION", parser_class=type(b))
    lg = bs.add_parser("log", parents=[common], help="a build's log")
    lg.add_argument("id", metavar="ID")
    lg.add_argument(
        "--follow", "-f", action="store_true", help="follow until the build ends; exit 0 if it succeeded, 1 otherwise"
    )
    lg.set_defaults(handler=cmd_builds_log)
    c = bs.add_parser("cancel", parents=[common], help="cancel a queued or running build")
    c.add_argument("id", metavar="ID")
    c.set_defaults(handler=cmd_builds_cancel)


def _exit_code(row: dict) -> int:
    return 0 if row["status"] == "succeeded" else 1


def _stderr(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def cmd_build(ctx: Context) -> Output:
    site, a = ctx.site, ctx.args
    builder = jobs.builder_for(site, a.builder)
    options = jobs.parse_options(builder, a.option)
    build_id = jobs.create_build(
        site,
        a.spec,
        a.builder,
        a.arch,
        options,
        publish=a.publish,
        promote=a.promote,
        create=a.create,
        override=a.override,
        name=a.name,
        label=a.label,
        executor=a.executor,
    )
    proc = jobs.spawn_worker(site, build_id)
    log_path = jobs.build_paths(site, build_id).log
    if a.detach:
        row = jobs.get_build(site, build_id)
        return Output(
            row,
            f"build {build_id} started (pid {proc.pid})\n  log: {log_path}\n"
            f"  follow: console builds log {build_id} --follow",
        )
    write = (lambda text: None) if a.quiet else _stderr
    follower = jobs.LogFollower(site, build_id)
    try:
        row = jobs.follow_log(site, build_id, write, follower=follower)
    except KeyboardInterrupt:
        _stderr(f"console: cancelling build {build_id}\n")
        try:
            jobs.cancel_build(site, build_id)
        except DepotError as exc:
            _stderr(f"console: {exc}\n")
        row = jobs.follow_log(site, build_id, write, follower=follower)
    proc.wait()
    notes = [] if row["status"] == "succeeded" else [f"console: {build_summary(row)} (log: {log_path})"]
    return Output(row, build_summary(row), _exit_code(row), notes)


def cmd_builds(ctx: Context) -> Output:
    rows = jobs.list_builds(ctx.site, limit=ctx.args.limit, status=ctx.args.status)
    now = ctx.site.now()
    text = (
        table(
            ["ID", "STATUS", "BUILDER", "NAME", "TARGETS", "CREATED", "RELEASE", "ERROR"],
            [
                [
                    r["id"],
                    r["status"] + (f" ({r['step']})" if r["status"] == "running" and r["step"] else ""),
                    r["builder"],
                    r["name"] or "-",
                    _targets_text(r),
                    ago(r["created"], now),
                    short(r["release"]),
                    r["error"] or "",
                ]
                for r in rows
            ],
            right=[0],
        )
        if rows
        else "no builds"
    )
    return Output(rows, text)


def _targets_text(row: dict) -> str:
    """``x86_64_v3,zen3``; for a Slurm build each with its job id and state (``zen3:42 RUNNING``)."""
    jobs = row.get("jobs") or {}
    if row.get("executor") != "slurm" or not jobs:
        return ",".join(row["targets"])
    parts = []
    for arch in row["targets"]:
        j = jobs.get(arch) or {}
        parts.append(f"{arch}:{j.get('job') or '-'} {j.get('state') or 'PENDING'}" if j else arch)
    return ", ".join(parts)


def cmd_builds_log(ctx: Context) -> Output:
    site, build_id = ctx.site, jobs.parse_build_id(ctx.args.id)
    if ctx.args.follow:

        def out(text: str) -> None:
            sys.stdout.write(text)
            sys.stdout.flush()

        row = jobs.follow_log(site, build_id, out if not ctx.json else (lambda text: None))
        return Output(row, "", _exit_code(row))
    row = jobs.get_build(site, build_id)
    text, _ = jobs.read_log(site, build_id, whole_lines=False)
    return Output({"build": row, "log": text}, text)


def cmd_builds_cancel(ctx: Context) -> Output:
    row = jobs.cancel_build(ctx.site, ctx.args.id)
    return Output(row, build_summary(row))
