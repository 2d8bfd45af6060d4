"""Shell environment for a hydrated depot (``console node env``), and what kind of depot it is.

The image path in the exports is the resolved ``releases/<hex>/<arch>`` directory, not the
``current/<channel>`` link: a shell set up once keeps using the release it was set up with even
when the channel switches underneath it (pruning keeps the previous images for a while).

* Julia (builder kind ``julia``, or the image has ``environments/v*/Manifest.toml``):
  ``JULIA_DEPOT_PATH=<writable>:<image>:`` — the node's writable layer first (new compile caches,
  logs, registries go there), the delivered depot read-only second, and the trailing colon keeps
  Julia's defaults (the bundled stdlib depots) after them; ``JULIA_PROJECT`` the image's newest
  ``environments/v*``; ``JULIA_PKG_OFFLINE=true``; ``JULIA_CPU_TARGET`` the image's CPU target.
* Python (builder kind ``python``, or the image has ``lib/python``): ``PYTHONPATH=<image>/lib/python``
  (replacing any inherited value, so the result does not depend on the caller's shell) and
  ``PYTHONDONTWRITEBYTECODE=1``: the image is read-only and its ``__pycache__`` holds the delivered
  bytecode. (``PYTHONPYCACHEPREFIX`` would make Python ignore those delivered ``.pyc`` files.)
* Always: ``DEPOT_CHANNEL``, ``DEPOT_RELEASE``, ``DEPOT_IMAGE`` (the arch), ``DEPOT_IMAGE_DIR``.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from core.arch import julia_cpu_target
from core.errors import BadInput, NotFound
from core.model.manifest import Release
from core.node.hydrate import local_release
from core.node.root import NodeRoot

SHELLS = ("sh", "fish", "json")


@dataclass
class NodeImage:
    """The image a channel currently points at on this node, with its release manifest."""

    channel: str
    release: Release
    arch: str
    path: Path

    @property
    def julia_env(self) -> Path | None:
        """The newest ``environments/v*`` directory holding a Project.toml, if any."""
        envs = self.path / "environments"
        best: tuple[tuple[int, ...], Path] | None = None
        if envs.is_dir():
            for d in envs.iterdir():
                m = re.fullmatch(r"v(\d+)(?:\.(\d+))?", d.name)
                if m and (d / "Project.toml").is_file():
                    key = tuple(int(x) for x in m.groups() if x is not None)
                    if best is None or key > best[0]:
                        best = (key, d)
        return best[1] if best else None

    @property
    def is_julia(self) -> bool:
        if self.release.builder.get("kind") == "julia":
            return True
        envs = self.path / "environments"
        return envs.is_dir() and any((d / "Manifest.toml").is_file() for d in envs.glob("v*"))

    @property
    def is_python(self) -> bool:
        return self.release.builder.get("kind") == "python" or (self.path / "lib" / "python").is_dir()

    @property
    def cpu_target(self) -> str:
        img = self.release.images.get(self.arch)
        if img is not None and img.cpu_target:
            return img.cpu_target
        try:
            return julia_cpu_target(self.arch)
        except BadInput:
            return "generic"


def node_image(node: NodeRoot, channel: str) -> NodeImage:
    """The image behind ``current/<channel>``; ``NotFound`` if the channel was never hydrated here."""
    cur = node.current(channel)
    if cur is None:
        raise NotFound(
            f"channel {channel} is not hydrated on this node (no {node.current_dir / channel}): "
            "run 'console node hydrate' first"
        )
    if not cur.path.is_dir():
        raise NotFound(f"{node.current_dir / channel} points at a missing image {cur.path}")
    return NodeImage(channel, local_release(node, cur.release), cur.arch, cur.path)


def image_env(node: NodeRoot, img: NodeImage) -> dict[str, str]:
    """The variables to export for ``img`` (insertion order is the print order)."""
    env = {
        "DEPOT_CHANNEL": img.channel,
        "DEPOT_RELEASE": img.release.id,
        "DEPOT_IMAGE": img.arch,
        "DEPOT_IMAGE_DIR": str(img.path),
    }
    if img.is_julia:
        writable = node.writable / "julia"
        writable.mkdir(parents=True, exist_ok=True)
        env["JULIA_DEPOT_PATH"] = f"{writable}:{img.path}:"
        project = img.julia_env
        if project is not None:
            env["JULIA_PROJECT"] = str(project)
        env["JULIA_PKG_OFFLINE"] = "true"
        env["JULIA_CPU_TARGET"] = img.cpu_target
    if img.is_python:
        env["PYTHONPATH"] = str(img.path / "lib" / "python")
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _fish_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def format_env(env: dict[str, str], shell: str) -> str:
    """Exports for ``eval``: POSIX sh (``export K='v'``), fish (``set -gx K 'v'``) or JSON."""
    if shell == "sh":
        return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())
    if shell == "fish":
        return "\n".join(f"set -gx {k} {_fish_quote(v)}" for k, v in env.items())
    if shell == "json":
        return json.dumps(env, indent=2)
    raise BadInput(f"unknown shell {shell!r}: use one of {', '.join(SHELLS)}")
