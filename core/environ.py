"""The environment a child process gets: the console's own, minus its secrets.

Builds, their tools, publish hooks and any other program the console starts run code the operator
did not write line by line (a build prints its environment into a log anyone with the site can read,
a hook is a shell line from ``console.toml``). None of them needs the key passphrase, so none gets
it: ``child_env`` is ``os.environ`` without ``DEPOT_KEY_PASSPHRASE`` and without any other
``DEPOT_*`` name that says it holds a secret (``*PASSPHRASE*``, ``*PASSWORD*``, ``*SECRET*``,
``*TOKEN*``, ``*PRIVATE_KEY*``). ``core.trust.signing`` reads the passphrase once and removes it from
``os.environ`` as well, so even a child started without ``child_env`` does not inherit it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

PASSPHRASE_ENV = "DEPOT_KEY_PASSPHRASE"
_SECRET_WORDS = ("PASSPHRASE", "PASSWORD", "SECRET", "TOKEN", "PRIVATE_KEY")


def is_secret(name: str) -> bool:
    """Whether an environment variable is one of the console's secrets (never given to a child)."""
    upper = name.upper()
    return upper == PASSPHRASE_ENV or (upper.startswith("DEPOT_") and any(w in upper for w in _SECRET_WORDS))


def scrub(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the console's secrets."""
    return {k: v for k, v in env.items() if not is_secret(k)}


def child_env(extra: Mapping[str, str] | None = None, *, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process: ``base`` (default ``os.environ``) without secrets,
    then ``extra`` on top, as given: the one child that must sign, the console's own build worker,
    is handed its passphrase explicitly (``child_env(core.trust.signing.passphrase_env())``), never
    by inheritance."""
    env = scrub(os.environ if base is None else base)
    env.update(extra or {})
    return env
