"""Where the console and the node keep their files by default: the XDG base directories.

One rule for both, so the site (``~/.local/share/depot-console``), the node root
(``~/.local/share/depot-node``) and the node config (``~/.config/depot-node/node.toml``) can never
disagree on how ``$XDG_DATA_HOME``/``$XDG_CONFIG_HOME`` and their defaults are read.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_HOME = "XDG_DATA_HOME"
CONFIG_HOME = "XDG_CONFIG_HOME"
_HOME_DEFAULTS = {DATA_HOME: (".local", "share"), CONFIG_HOME: (".config",)}


def xdg_home(var: str) -> Path:
    """``$XDG_DATA_HOME`` or ``$XDG_CONFIG_HOME`` if set and not empty, else its default under ``~``."""
    return Path(os.environ.get(var) or os.path.join(os.path.expanduser("~"), *_HOME_DEFAULTS[var]))


def default_path(override_env: str, var: str, *parts: str) -> Path:
    """``$<override_env>`` if set and not empty, else ``xdg_home(var)`` joined with ``parts``."""
    if os.environ.get(override_env):
        return Path(os.environ[override_env])
    return xdg_home(var).joinpath(*parts)
