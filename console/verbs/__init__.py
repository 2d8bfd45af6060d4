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
]


def register_all(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    for name in MODULES:
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # verb group not present in this build
            raise
        mod.register(sub, common)
