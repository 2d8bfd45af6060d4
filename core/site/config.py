"""``console.toml``: the site's configuration, read with tomllib and written with tomli-w.

Defaults live here, in one table, so the CLI, the TUI and the docs agree on them.
"""
from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from core.errors import BadInput

CONFIG_NAME = "console.toml"

DEFAULTS: dict[str, dict[str, Any]] = {
    "site": {"name": "depot-site", "store": "store", "signing_key": "", "actor": ""},
    "publish": {"pre_publish": "", "post_publish": "", "abort_publish": "", "workers": 0,
                "max_manifest_bytes": 16 << 20, "progress_interval_s": 0.5},
    "channels": {"lifetime_days": 30},
    "node": {"keep": 3, "remote_console": "console", "root": ""},
    "fleet": {"fanout": 64, "connect_timeout": 10, "timeout": 120, "ssh_config": "", "groups": {}},
    "http": {"proxies": [], "timeout_s": 30, "retries": 3},
    "build": {"parallel": 2, "builders": {}},
    "trust": {"thresholds": {"release": 1, "channel": 1}, "keys": []},
}


class Config:
    """The parsed configuration with defaults filled in; ``save`` writes it back."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    @classmethod
    def load(cls, path: Path) -> "Config":
        try:
            raw = tomllib.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise BadInput(f"no site at {path.parent} ({CONFIG_NAME} missing): run 'console init' first") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BadInput(f"{path}: invalid TOML ({exc})") from None
        data = copy.deepcopy(DEFAULTS)
        for section, values in raw.items():
            if not isinstance(values, dict):
                raise BadInput(f"{path}: [{section}] must be a table")
            data.setdefault(section, {}).update(values)
        return cls(path, data)

    @classmethod
    def new(cls, path: Path, **site: Any) -> "Config":
        data = copy.deepcopy(DEFAULTS)
        data["site"].update(site)
        return cls(path, data)

    def get(self, section: str, key: str) -> Any:
        return self.data.get(section, {}).get(key, DEFAULTS.get(section, {}).get(key))

    def set(self, section: str, key: str, value: Any) -> None:
        self.data.setdefault(section, {})[key] = value

    def save(self) -> None:
        """Write atomically (temp then rename) so a crash never leaves half a config."""
        tmp = self.path.with_suffix(".toml.tmp")
        tmp.write_text(tomli_w.dumps(self.data), "utf-8")
        os.replace(tmp, self.path)
