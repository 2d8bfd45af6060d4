"""Step 2 of a hydrate: the image for this CPU (``core.arch.choose_image``; a per-node override wins)."""

from __future__ import annotations

from dataclasses import dataclass

from core.arch import choose_image, host_microarch
from core.errors import CheckFailed
from core.model.manifest import Image, Release


@dataclass
class Chosen:
    """The image a node installs, and why."""

    cpu: str  # the node's micro-architecture (detected, or given)
    arch: str  # the image's key in the release
    reason: str
    image: Image


def choose(rel: Release, cpu: str | None, arch: str | None) -> Chosen:
    """The most specific image of ``rel`` that ``cpu`` (default: this host) runs, or ``arch`` if the
    release has it; ``CheckFailed`` (1) saying why when none fits."""
    cpu_name = cpu or host_microarch()
    choice = choose_image(cpu_name, rel.images, arch)
    if choice.image is None:
        raise CheckFailed(f"no image of release {rel.id[7:19]} fits this node: {choice.reason}")
    return Chosen(cpu_name, choice.image, choice.reason, rel.images[choice.image])
