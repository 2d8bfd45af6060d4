"""The ``depot-console`` entry point (and ``python -m console``): hand the command line to the
user's agent when one runs (``console.agent``), else run it in this process (``console.cli``).

Imports builtins only until it knows which: a call through the agent pays for this module, the
socket round trip and the verb, not for importing the console. The ``console`` command in front of
it (``bin/console``, a ``/bin/sh`` script) calls ``handoff`` from ``python -S`` when an agent
socket exists, so such a call does not pay for site-packages either.
"""

from __future__ import annotations

import os
import sys

from console.verb_name import verb_of

#: Verbs never handed to the agent: its own controls, and ``demo``, which opens the terminal console.
LOCAL_VERBS = frozenset({"agent", "demo"})


def agent_may_run(argv: list[str]) -> bool:
    """Whether this command line may run in the agent: it never opens the terminal console (a
    verb other than ``demo``, ``--headless``, or stdout not a terminal) and the agent is not off."""
    from console.agent.address import DISABLE_ENV

    if os.environ.get(DISABLE_ENV, "").lower() in ("off", "0", "no", "false"):
        return False
    verb = verb_of(argv)
    if verb in LOCAL_VERBS:
        return False
    return verb is not None or "--headless" in argv or not os.isatty(1)


def main() -> int:
    argv = sys.argv[1:]
    if agent_may_run(argv):
        from console.agent.client import run

        code = run(argv, sys.argv[0])
        if code is not None:
            return code
    from console.cli import main as run_here

    return run_here(argv)


def handoff(entry: str, argv0: str, argv: list[str]) -> int:
    """``bin/console``'s fast path, in an interpreter without site-packages: the agent's exit code
    for ``argv``, or (no agent took it) ``entry``, the full entry point, run in this process's place."""
    if agent_may_run(argv):
        from console.agent.client import run

        code = run(argv, argv0)
        if code is not None:
            return code
    os.execv(entry, [entry, *argv])
