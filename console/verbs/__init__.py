"""The headless verbs, one module per group; each module's ``register`` adds its sub-parsers.

Every handler takes a ``Context`` and returns an ``Output``; all real work is a call into ``core``.
"""

from __future__ import annotations

import argparse
import importlib

MODULES = [
    "site_verbs",
    "release_verbs",
    "channel_verbs",
    "node_verbs",
    "fleet_verbs",
    "build_verbs",
    "demo_verbs",
    "cvmfs_verbs",
    "policy_verbs",
    "rollout_verbs",
    "serve_verbs",
    "agent_verbs",
]


#: The module that registers each top-level verb: a command line naming one of them builds only
#: that module's parsers, so ``console show`` does not import (and pay for) the fleet, build and
#: CVMFS verbs. ``tests/cli/test_cli.py`` checks this table against what the modules register.
VERB_MODULE = {
    "init": "site_verbs",
    "keys": "site_verbs",
    "audit": "site_verbs",
    "publish": "release_verbs",
    "releases": "release_verbs",
    "show": "release_verbs",
    "verify": "release_verbs",
    "diff": "release_verbs",
    "export": "release_verbs",
    "gc": "release_verbs",
    "promote": "channel_verbs",
    "rollback": "channel_verbs",
    "refresh": "channel_verbs",
    "channels": "channel_verbs",
    "history": "channel_verbs",
    "node": "node_verbs",
    "nodes": "fleet_verbs",
    "fleet": "fleet_verbs",
    "build": "build_verbs",
    "builds": "build_verbs",
    "demo": "demo_verbs",
    "cvmfs": "cvmfs_verbs",
    "policy": "policy_verbs",
    "approve": "policy_verbs",
    "proposals": "policy_verbs",
    "rollout": "rollout_verbs",
    "serve-config": "serve_verbs",
    "agent": "agent_verbs",
}


def register_all(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, verb: str | None = None) -> None:
    """Every verb group's parsers; with ``verb`` (a name in ``VERB_MODULE``), only its group's."""
    for name in [VERB_MODULE[verb]] if verb in VERB_MODULE else MODULES:
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # verb group not present in this build
            raise
        mod.register(sub, common)
