"""Shell environment for a hydrated depot (``console node env``), and what kind of depot it is.

The image path in the exports is the resolved ``releases/<hex>/<arch>`` directory, not the
``current/<channel>`` link: a shell set up once keeps using the release it was set up with even
when the channel switches underneath it (pruning keeps the previous images for a while).

* Each kind the image is (``core.kinds.image_kinds``: its release's ``builder.kind``, or what its
  contents look like) adds its own variables, in registry order: Julia ``JULIA_DEPOT_PATH`` (the
  node's writable layer ``<root>/writable/julia`` first), ``JULIA_PROJECT``, ``JULIA_PKG_OFFLINE``,
  ``JULIA_CPU_TARGET``; Python ``PYTHONPATH`` and ``PYTHONDONTWRITEBYTECODE`` (see
  ``core.kinds.julia`` and ``core.kinds.python`` for what each means).
* Always: ``DEPOT_CHANNEL``, ``DEPOT_RELEASE``, ``DEPOT_IMAGE`` (the arch), ``DEPOT_IMAGE_DIR``.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from core.errors import BadInput, NotFound
from core.kinds import Kind, image_kinds
from core.model.manifest import Release
from core.node.hydrate.verify import local_release
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
    def kinds(self) -> list[Kind]:
        """The kinds this image is: by the release's ``builder.kind`` or by the image's contents."""
        return image_kinds(self.path, str(self.release.builder.get("kind", "")))

    @property
    def cpu_target(self) -> str:
        """The manifest's ``cpu_target`` for this image ("" when it records none)."""
        img = self.release.images.get(self.arch)
        return img.cpu_target if img is not None and img.cpu_target else ""


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
    for kind in img.kinds:
        env.update(
            kind.node_env(img.path, arch=img.arch, cpu_target=img.cpu_target, writable=node.writable / kind.name)
        )
    return env


#: Search paths ``node env`` puts the image in front of rather than replacing: a shell that had
#: its own ``PYTHONPATH`` keeps it, after the depot.
PREPENDED = ("PYTHONPATH",)


def shell_env(node: NodeRoot, env: dict[str, str], inherited: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` as a shell should export it: each `PREPENDED` variable is the image's value, then
    the ``inherited`` one (default: this process's environment, i.e. the shell running ``eval``),
    whose entries inside this node's ``releases/`` (a depot evaluated before) are dropped, so
    evaluating again after a switch replaces the old image instead of stacking it."""
    inherited = os.environ if inherited is None else inherited
    out = dict(env)
    mine = str(node.releases) + os.sep
    for name in PREPENDED:
        if name not in env or not inherited.get(name):
            continue
        kept = [p for p in inherited[name].split(os.pathsep) if not (p + os.sep).startswith(mine)]
        kept = [p for p in kept if p != env[name]]
        if kept:
            out[name] = os.pathsep.join([env[name], *kept])
    return out


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
