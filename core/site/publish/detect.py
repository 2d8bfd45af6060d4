"""The kind-specific step of a publish: what the images' contents say about the release.

Each image's cpu target (Julia's ``JULIA_CPU_TARGET``; "" for Python and plain trees) and, when
the caller gave no source section, the packages and lock files a kind finds in the tree. What is
Julia- or Python-specific lives in ``core.kinds``; this step only asks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.model.digest import hash_file
from core.site.scan import ScannedTree


@dataclass
class Detected:
    """What the detection step adds to the manifest."""

    cpu_targets: dict[str, str]  # arch -> cpu target ("" when the image is not Julia's)
    builder: dict[str, Any]
    source: dict[str, Any]


def detect_kind(
    trees: dict[str, ScannedTree],
    builder: dict[str, Any],
    source: dict[str, Any] | None,
    cpu_targets: dict[str, str] | None,
) -> Detected:
    """Each image's cpu target, and the source section (unless given) from a Julia environment.

    A Julia build (or an explicit ``cpu_targets`` entry) always gets a target; a plain tree gets
    one only when it holds a Julia environment. ``builder`` is the caller's copy: a ``tree``
    builder gains the environment's path inside the image.
    """
    from core.kinds import image_cpu_target, tree_source

    targets = {
        a: image_cpu_target(tree.root, a, builder_kind=builder["kind"], explicit=(cpu_targets or {}).get(a))
        for a, tree in trees.items()
    }
    if source is None:
        source = {"files": {}, "packages": []}
        for tree in trees.values():
            found = tree_source(tree.root)
            if found:
                source["packages"] = found.packages
                source["files"] = {name: hash_file(path)[0] for name, path in found.files.items()}
                if builder["kind"] == "tree":
                    builder["environment"] = found.environment
                break
    return Detected(targets, builder, source)
