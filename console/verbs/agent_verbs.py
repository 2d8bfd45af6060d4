"""``console agent start|stop|status``: the resident agent that runs headless verbs for scripts
without paying the interpreter's start-up and the console's imports on every call (``console.agent``)."""

from __future__ import annotations

import argparse

from console.context import Context, Output


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from console.agent.control import DEFAULT_IDLE_S

    p = sub.add_parser(
        "agent",
        parents=[common],
        help="a resident console that runs headless verbs without start-up cost (for scripts)",
        description="While the agent runs, every headless command line of this user and install is run "
        "by a fork of it (same output, exit code, environment and directory) instead of a new "
        "interpreter. DEPOT_CONSOLE_AGENT=off bypasses it for one call.",
    )
    verbs = p.add_subparsers(dest="agent_verb", required=True, metavar="start|stop|status")
    s = verbs.add_parser("start", parents=[common], help="start this user's agent (nothing if it runs)")
    s.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_S,
        metavar="S",
        help=f"stop after S seconds without a verb (default {DEFAULT_IDLE_S}; 0: never)",
    )
    s.set_defaults(handler=cmd_start)
    verbs.add_parser("stop", parents=[common], help="stop it (running verbs finish first)").set_defaults(
        handler=cmd_stop
    )
    verbs.add_parser("status", parents=[common], help="whether it runs (exit 1 if not)").set_defaults(
        handler=cmd_status
    )


def _describe(st: object) -> str:
    from console.agent.control import Status

    assert isinstance(st, Status)
    if not st.running:
        return f"agent: not running (socket {st.socket})"
    return f"agent: running, pid {st.pid}, {st.served} verbs served, {st.busy} running (socket {st.socket})"


def cmd_start(ctx: Context) -> Output:
    from console.agent.control import start

    st, started = start(ctx.args.idle_timeout)
    text = _describe(st) if started else _describe(st).replace("running,", "already running,", 1)
    return Output({**st.to_json(), "started_now": started}, text)


def cmd_stop(ctx: Context) -> Output:
    from console.agent.control import stop

    st = stop()
    if not st.running:
        return Output({**st.to_json(), "stopped": False}, "agent: not running")
    tail = f"; {st.busy} running verbs finish first" if st.busy else ""
    return Output({**st.to_json(), "stopped": True}, f"agent: stopped (pid {st.pid}){tail}")


def cmd_status(ctx: Context) -> Output:
    from console.agent.control import status

    st = status()
    return Output(st.to_json(), _describe(st), exit_code=0 if st.running else 1)
