"""CVMFS targets (``[cvmfs] targets`` of ``console.toml``) and where things go inside a repository.

A target is one repository (its fully qualified name, ``repo``) and a directory in it (``prefix``)::

    <mount>/depot-init.sh                          the node-side init script (``initscript``)
    <mount>/<prefix>/releases/<hex>/...            one release: images, release.json, depot.env, .cvmfscatalog
    <mount>/<prefix>/channels/<name>               -> ../releases/<hex> (relative symlink)
    <mount>/<prefix>/channels/<name>.json          the signed pointer envelope, as stored

``mount`` is where the console host writes (the stratum-0 path, ``/cvmfs/<repo>``); ``node_mount``
is the path nodes see, baked into ``depot-init.sh`` (default: the same).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import BadInput
from core.model.digest import hex_of
from core.node.mount import CHANNELS, RELEASES
from core.store.base import check_channel_name

if TYPE_CHECKING:
    from core.site.site import Site

MODES = ("transaction", "ingest")
TEMPLATES = ("transaction", "publish", "abort", "ingest")
INIT_SCRIPT = "depot-init.sh"
_KEYS = {"name", "repo", "mount", "node_mount", "prefix", "channels", "mode", *TEMPLATES}
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


@dataclass(frozen=True)
class Target:
    """One CVMFS repository (and prefix in it) that receives releases and follows channels."""

    name: str
    repo: str
    mount: Path
    node_mount: Path
    prefix: str
    channels: tuple[str, ...] | None  # None: every channel
    mode: str
    templates: dict[str, str] = field(default_factory=dict)

    @property
    def depot(self) -> Path:
        """``<mount>/<prefix>``: what ``node ... --mount`` is given (as the console host sees it)."""
        return self.mount / self.prefix if self.prefix else self.mount

    @property
    def node_depot(self) -> Path:
        return self.node_mount / self.prefix if self.prefix else self.node_mount

    @property
    def releases(self) -> Path:
        return self.depot / RELEASES

    @property
    def channels_dir(self) -> Path:
        return self.depot / CHANNELS

    def release_dir(self, release_id: str) -> Path:
        return self.releases / hex_of(release_id)

    def base_dir(self, release_id: str) -> str:
        """The release directory relative to the repository root (ingest's ``--base_dir``)."""
        return "/".join(p for p in (self.prefix, RELEASES, hex_of(release_id)) if p)

    def follows(self, channel: str) -> bool:
        return self.channels is None or channel in self.channels

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "repo": self.repo,
            "mount": str(self.mount),
            "node_mount": str(self.node_mount),
            "prefix": self.prefix,
            "channels": list(self.channels) if self.channels is not None else None,
            "mode": self.mode,
        }


def _target(raw: dict[str, Any], i: int, defaults: Any, where: str) -> Target:
    where = f"{where} targets[{i}]"
    unknown = set(raw) - _KEYS
    if unknown:
        raise BadInput(f"{where}: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(_KEYS))})")
    for key, value in raw.items():
        if key == "channels":
            if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
                raise BadInput(f"{where}: channels must be a list of channel names")
        elif not isinstance(value, str):
            raise BadInput(f"{where}: {key} must be a string")
    repo = raw.get("repo", "")
    if not _REPO_RE.match(repo):
        raise BadInput(f"{where}: repo must be a repository name such as depot.example.org, not {repo!r}")
    prefix = str(raw.get("prefix", defaults.prefix)).strip("/")
    if prefix and (not _PREFIX_RE.match(prefix) or any(p in (".", "..") for p in prefix.split("/"))):
        raise BadInput(f"{where}: prefix must be a relative path of plain names, not {prefix!r}")
    mode = raw.get("mode", defaults.mode)
    if mode not in MODES:
        raise BadInput(f"{where}: mode must be one of {', '.join(MODES)}, not {mode!r}")
    mount = Path(raw.get("mount") or f"/cvmfs/{repo}")
    if not mount.is_absolute():
        raise BadInput(f"{where}: mount must be an absolute path, not {str(mount)!r}")
    node_mount = Path(raw.get("node_mount") or mount)
    channels = raw.get("channels")
    if channels is not None:
        channels = tuple(check_channel_name(c) for c in channels)
    templates = {t: str(raw.get(t, getattr(defaults, t))) for t in TEMPLATES}
    return Target(raw.get("name") or repo, repo, mount, node_mount, prefix, channels, mode, templates)


def targets(site: Site) -> list[Target]:
    """The configured targets, validated (BadInput naming the key); their commands run as the
    operator, so the config must be writable by its owner only (as for publish hooks)."""
    from core.site import config

    cfg = site.config.cvmfs
    if not cfg.targets:
        return []
    check_safe = getattr(config, "check_hook_config_safe", None)  # the publish hooks' rule, where present
    if check_safe is not None:
        check_safe(site.config.path)
    out = [_target(raw, i, cfg, f"{site.config.path}: [cvmfs]") for i, raw in enumerate(cfg.targets)]
    names = [t.name for t in out]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise BadInput(f"{site.config.path}: [cvmfs] two targets are called {dup!r}: give one a name")
    return out


def find_target(site: Site, ref: str | None) -> list[Target]:
    """The targets ``ref`` names (a target name, a repo name, or a mount/depot path); all if None."""
    all_targets = targets(site)
    if ref is None:
        if not all_targets:
            raise BadInput('no CVMFS targets: add [[cvmfs.targets]] with repo = "..." to console.toml')
        return all_targets
    found = [
        t for t in all_targets if ref in (t.name, t.repo, str(t.mount), str(t.depot)) or Path(ref) in (t.mount, t.depot)
    ]
    if not found:
        known = ", ".join(t.name for t in all_targets) or "none configured"
        raise BadInput(f"no CVMFS target {ref!r} (targets: {known})")
    return found
