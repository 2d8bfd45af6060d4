"""The kind-specific step of a publish: what the images' contents say about the release.

Today this is Julia's: each image's ``JULIA_CPU_TARGET`` and, when the caller gave no source
section, the packages and lock files of the Julia environment found in the tree. It only calls
what ``core.arch`` and ``core.kinds.packages`` provide; ``core.kinds`` is where it is headed.
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
    import core.arch as archmod
    from core.kinds.packages import find_julia_environment, julia_manifest_packages

    targets: dict[str, str] = {}
    for a, tree in trees.items():
        if builder["kind"] == "julia" or (cpu_targets and a in cpu_targets):
            targets[a] = (cpu_targets or {}).get(a) or archmod.julia_cpu_target(a)
        else:
            targets[a] = archmod.julia_cpu_target(a) if find_julia_environment(tree.root) else ""

    if source is None:
        source = {"files": {}, "packages": []}
        for tree in trees.values():
            manifest = find_julia_environment(tree.root)
            if manifest:
                source["packages"] = julia_manifest_packages(manifest.read_text("utf-8"))
                for fname in ("Project.toml", "Manifest.toml"):
                    p = manifest.parent / fname
                    if p.exists():
                        source["files"][fname] = hash_file(p)[0]
                if builder["kind"] == "tree":
                    builder["environment"] = str(manifest.parent.relative_to(tree.root))
                break
    return Detected(targets, builder, source)
