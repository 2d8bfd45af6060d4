"""``console demo [DIR]``: build a demo site, then open the console on it (or print its summary
with ``--headless``, ``--json`` or when stdout is not a terminal)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from console.context import Context, Output
from console.render import short


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "demo",
        parents=[common],
        help="create a demo site (releases, two channels, ~50 nodes) and open the console on it",
    )
    p.add_argument(
        "dir", nargs="?", type=Path, metavar="DIR", help="where to create it (default: a new temporary directory)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for the demo's key and data (default 0)")
    p.set_defaults(handler=cmd_demo)


def cmd_demo(ctx: Context) -> Output:
    root = ctx.args.dir or Path(tempfile.mkdtemp(prefix="depot-demo-")) / "site"
    say = (lambda m: sys.stderr.write(f"demo: {m}\n")) if sys.stderr.isatty() else None
    from core.demo.site import build_demo

    summary = build_demo(root, seed=ctx.args.seed, progress=say)
    if not (getattr(ctx.args, "headless", False) or ctx.json) and sys.stdout.isatty():
        return Output(
            summary.to_json(), f"demo site at {root} (open it again: console --site {root})", open_console=root
        )
    chans = ", ".join(f"{c} -> {short(r)}" for c, r in sorted(summary.channels.items()))
    text = (
        f"demo site at {root}\n{len(summary.releases)} releases; channels {chans}; {summary.nodes} nodes, "
        f"{summary.smoke_runs} smoke runs, {summary.builds} builds\nopen it: console --site {root}"
    )
    return Output(summary.to_json(), text)
