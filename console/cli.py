"""``console``: the entry point. No verb opens the TUI; ``--headless VERB`` (or any verb) runs it
as a script would, with human text or ``--json`` on stdout and diagnostics on stderr.

Exit codes (DESIGN §8): 0 ok · 1 a check failed · 2 bad input · 3 conflict · 4 trust failure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from console import __version__
from console.context import Context, Handler, Output
from console.render import InertStream, inert
from console.verb_name import verb_of
from core.errors import DISK_FULL_ERRNOS, Ambiguous, BadInput, DepotError, disk_full


class UsageError(BadInput):
    """A command line the parser refused (exit 2): one ``console: error: …`` line on stderr and,
    with ``--json``, the error document on stdout like every other failure."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line with exit code 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def json_wanted(argv: list[str] | None) -> bool:
    """Whether the command line asks for ``--json`` (read before parsing: a usage error is
    reported before there are parsed arguments)."""
    return "--json" in (sys.argv[1:] if argv is None else argv)


def usage_error(exc: UsageError, as_json: bool) -> int:
    sys.stderr.write(f"console: error: {inert(exc)}\n")
    if as_json:
        sys.stdout.write(json.dumps(error_document(exc), sort_keys=True) + "\n")
    return exc.exit_code


def common_options() -> argparse.ArgumentParser:
    """Options accepted before or after the verb (``console rollback … --json``)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--site",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="site directory (default: $DEPOT_CONSOLE_SITE, else ~/.local/share/depot-console)",
    )
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document on stdout")
    p.add_argument("--headless", action="store_true", default=argparse.SUPPRESS, help="never open the TUI")
    p.add_argument(
        "--read-only", action="store_true", default=argparse.SUPPRESS, help="refuse every state-changing action"
    )
    return p


def build_parser(verb: str | None = None) -> ArgumentParser:
    """The whole parser; with ``verb``, only that verb's group is registered (see ``VERB_MODULE``)."""
    from console.verbs import register_all

    common = common_options()
    parser = ArgumentParser(
        prog="console",
        parents=[common],
        description="Deliver precompiled software depots to heterogeneous cluster nodes.",
        epilog="Without a verb: the terminal console (with --headless: a site summary). "
        "Exit codes: 0 ok, 1 check failed, 2 bad input, 3 conflict, 4 trust failure.",
    )
    parser.add_argument("--version", action="version", version=f"depot-console {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=ArgumentParser)
    register_all(sub, common, verb)
    return parser


def emit(ctx: Context, out: Output) -> None:
    for note in out.notes:
        sys.stderr.write(note.rstrip("\n") + "\n")
    if ctx.json:
        sys.stdout.write(json.dumps(out.data, indent=2, sort_keys=True, default=str) + "\n")
    elif out.text:
        sys.stdout.write(out.text.rstrip("\n") + "\n")


def site_warnings(ctx: Context) -> list[str]:
    """``console: warning: …`` lines the opened site collected (a deferred local record, a
    recreated table), each once."""
    site = getattr(ctx, "_site", None)
    notes = [f"console: {inert(w)}" for w in (getattr(site, "warnings", None) or [])]
    if site is not None:
        site.warnings = []
    return notes


def error_document(exc: DepotError) -> dict:
    doc: dict[str, Any] = {"error": str(exc), "exit_code": exc.exit_code}
    if isinstance(exc, Ambiguous):
        doc["candidates"] = exc.candidates
    return doc


def report(ctx: Context, exc: DepotError) -> int:
    """A failure: the site's warnings, then one line on stderr (and the error document with --json)."""
    for note in site_warnings(ctx):
        sys.stderr.write(note + "\n")
    sys.stderr.write(f"console: {inert(exc)}\n")
    if ctx.json:
        sys.stdout.write(json.dumps(error_document(exc), sort_keys=True) + "\n")
    return exc.exit_code


def open_console(site_dir: Path, read_only: bool) -> int:
    """Run the terminal console on ``site_dir`` until the operator quits; its exit code.

    The only place the CLI imports the TUI (lazily: headless verbs never load Textual).
    """
    from console.tui.app import run_app

    wrapped = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__  # Textual draws with escapes of its own
    try:
        return run_app(site_dir, read_only=read_only)
    finally:
        sys.stdout, sys.stderr = wrapped


def main(argv: list[str] | None = None, parser: ArgumentParser | None = None) -> int:
    """Run one command line; its exit code. Everything printed is made inert (``render.inert_text``):
    an escape sequence in a release name or a build log is shown, never acted on.

    ``parser``: the whole parser, built beforehand (the agent builds it once for all its verbs)."""
    plain = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = InertStream(sys.stdout), InertStream(sys.stderr)  # type: ignore[assignment]
    try:
        return _main(argv, parser)
    finally:
        sys.stdout, sys.stderr = plain


def _main(argv: list[str] | None, whole: ArgumentParser | None = None) -> int:
    verb = verb_of(sys.argv[1:] if argv is None else argv)
    parser = whole or build_parser(verb)
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        if verb is None or whole is not None:
            return usage_error(exc, json_wanted(argv))
        try:  # the one group's parser may have misread the line: the whole parser decides
            parser = build_parser()
            args = parser.parse_args(argv)
        except UsageError as exc:
            return usage_error(exc, json_wanted(argv))
    ctx = Context(args)
    handler: Handler | None = getattr(args, "handler", None)
    try:
        if handler is None:
            if getattr(args, "verb", None):
                parser.parse_args([args.verb, "--help"])
            if getattr(args, "headless", False) or not sys.stdout.isatty():
                from console.verbs.site_verbs import summary

                out = summary(ctx)
            else:
                return open_console(ctx.site_dir, ctx.read_only)
        else:
            out = handler(ctx)
        if out.open_console is not None:
            out.exit_code = open_console(out.open_console, ctx.read_only)
        out.notes[:0] = site_warnings(ctx)
        emit(ctx, out)
        return out.exit_code
    except DepotError as exc:
        return report(ctx, exc)
    except KeyboardInterrupt:
        sys.stderr.write("console: interrupted\n")
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # disk full wherever it struck (a node's hydrate too): one line, exit 1
        if exc.errno not in DISK_FULL_ERRNOS:
            raise
        return report(ctx, disk_full(exc))
    finally:
        ctx.close()


if __name__ == "__main__":
    raise SystemExit(main())
