"""Everything Julia- or Python-specific, behind one protocol (`core.kinds.base.Kind`).

The registry holds one instance per kind, in precedence order (``julia`` before ``python``: a tree
that is both is first a Julia depot, as it always was):

* `kind_for(name)`: the kind called ``name`` (BadInput otherwise); `get_kind(name)`: or None;
* `detect_kind(tree)`: the first kind whose `Kind.detect` accepts a directory, or None;
* `image_kinds(tree, builder_kind)`: every kind an image is, by its release's ``builder.kind`` or
  by its contents (a node sets up the variables of each, in registry order);
* `image_cpu_target` and `tree_source`: what publish records for a tree without a build.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import BadInput
from core.kinds.base import FINGERPRINT_ENV, Kind, Package, TreeSource
from core.kinds.julia import Julia
from core.kinds.python import Python

__all__ = [
    "FINGERPRINT_ENV",
    "Kind",
    "Package",
    "TreeSource",
    "all_kinds",
    "detect_kind",
    "get_kind",
    "image_cpu_target",
    "image_kinds",
    "kind_for",
    "known_kinds",
    "tree_source",
]

_KINDS: dict[str, Kind] = {k.name: k for k in (Julia(), Python())}


def all_kinds() -> list[Kind]:
    """Every kind, in precedence order."""
    return list(_KINDS.values())


def known_kinds() -> tuple[str, ...]:
    """The kinds' names, in precedence order (``("julia", "python")``)."""
    return tuple(_KINDS)


def get_kind(name: str) -> Kind | None:
    """The kind called ``name``, None for any other builder kind (``command``, ``tree``)."""
    return _KINDS.get(name)


def kind_for(name: str) -> Kind:
    """The kind called ``name``; BadInput naming the known kinds otherwise."""
    kind = _KINDS.get(name)
    if kind is None:
        raise BadInput(f"unknown kind {name!r} (known: {', '.join(_KINDS)})")
    return kind


def detect_kind(tree: Path) -> Kind | None:
    """The first kind (in precedence order) whose depot layout ``tree`` has, or None."""
    return next((k for k in _KINDS.values() if k.detect(Path(tree))), None)


def image_kinds(tree: Path, builder_kind: str = "") -> list[Kind]:
    """The kinds an image is: named by its release's ``builder.kind``, or detected in ``tree``."""
    return [k for k in _KINDS.values() if k.name == builder_kind or k.detect(Path(tree))]


def image_cpu_target(tree: Path, arch: str, *, builder_kind: str = "", explicit: str | None = None) -> str:
    """The ``images.<arch>.cpu_target`` a publish records for the image in ``tree``.

    The build's own target (``explicit``) if it gave one; else the first non-empty
    `Kind.image_target` of the image's kinds (a Julia image gets its ``JULIA_CPU_TARGET``);
    else "" (a Python or plain tree records none).
    """
    if explicit:
        return explicit
    for kind in image_kinds(tree, builder_kind):
        target = kind.image_target(arch)
        if target:
            return target
    return ""


def tree_source(tree: Path) -> TreeSource | None:
    """The first lock file a kind finds inside depot ``tree`` (a release's ``source``), or None."""
    for kind in _KINDS.values():
        found = kind.tree_source(Path(tree))
        if found is not None:
            return found
    return None
