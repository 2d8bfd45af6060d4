"""Step 7 of a hydrate (and ``node prune``): images beyond ``keep`` per channel, then the cache
objects and trees nothing uses any more."""

from __future__ import annotations

import os

from core.model.digest import digest_bytes, is_digest
from core.model.manifest import parse_tree
from core.node.hydrate.bundles import BUNDLE_DIR, load_bundles
from core.node.root import NodeRoot, force_rmtree


def kept_images(node: NodeRoot, keep: int) -> dict[tuple[str, str], str | None]:
    """(release, arch) -> tree root of the images to keep: current ones plus the ``keep`` most recent
    distinct images per channel in the switch history (current included)."""
    state = node.load_state()
    out: dict[tuple[str, str], str | None] = {}
    per_channel: dict[str, list[tuple[str, str]]] = {}
    for h in reversed(state["history"]):
        key = (h["release"], h["arch"])
        seen = per_channel.setdefault(h["channel"], [])
        if key not in seen and len(seen) < keep:
            seen.append(key)
            out.setdefault(key, h.get("root"))
    for ch in node.channels():
        cur = node.current(ch)
        if cur is not None:
            key = (cur.release, cur.arch)
            if key not in out:
                out[key] = next((h.get("root") for h in state["history"] if (h["release"], h["arch"]) == key), None)
    return out


def prune(
    node: NodeRoot, keep: int, *, locked: bool = False, stats: dict[str, os.stat_result] | None = None
) -> list[str]:
    """Remove images not kept (see ``kept_images``), then cache objects and trees nothing uses.

    A file object is unused when no image links to it (link count 1); a tree bundle when its root
    is not a kept image's; a tree file when it is not reachable from a kept image's root. Returns
    the removed image paths (relative to the root). ``stats``, if given, receives the ``stat`` of
    every cache object kept (by cache name), taken after the last unlink (``write_ledger`` uses them).
    """
    if not locked:
        with node.lock():
            return prune(node, keep, locked=True, stats=stats)
    keep_map = kept_images(node, keep)
    removed: list[str] = []
    for rel in sorted(node.releases.iterdir()) if node.releases.is_dir() else []:
        if not rel.is_dir() or len(rel.name) != 64:
            continue
        rid = "sha256:" + rel.name
        for img in sorted(rel.iterdir()):
            if img.is_dir() and not img.name.startswith(".") and (rid, img.name) not in keep_map:
                force_rmtree(img)
                removed.append(f"releases/{rel.name}/{img.name}")
        if not any(p.is_dir() for p in rel.iterdir()):
            force_rmtree(rel)
    for sub in os.scandir(node.objects):
        for obj in os.scandir(sub.path):
            st = obj.stat(follow_symlinks=False)
            if st.st_nlink <= 1:
                os.unlink(obj.path)
            elif stats is not None:
                stats[f"{sub.name}/{obj.name}"] = st
    roots = list(keep_map.values())
    loose_trees = [
        ("sha256:" + sub.name + f.name, f.path)
        for sub in os.scandir(node.trees)
        if sub.name != BUNDLE_DIR and sub.is_dir()
        for f in os.scandir(sub.path)
    ]
    if roots and all(r is not None and is_digest(r) for r in roots):
        kept_bundles = {r[7:] for r in roots if r}
        bundle_dir = node.trees / BUNDLE_DIR
        if bundle_dir.is_dir():
            for b in os.scandir(bundle_dir):
                if b.name not in kept_bundles:
                    os.unlink(b.path)
        if not loose_trees:  # a hydrate from a pack keeps every tree in its bundle: nothing to walk
            return removed
        bundled = load_bundles(node, [r for r in roots if r])
        reachable: set[str] = set()
        stack = [r for r in roots if r]
        while stack:
            d = stack.pop()
            if d in reachable:
                continue
            reachable.add(d)
            data = bundled.get(d, (None, None))[0]
            if data is None or digest_bytes(data) != d:
                path = node.tree_path(d)
                data = path.read_bytes() if path.is_file() else None
            if data is not None:
                for e in parse_tree(data, d):
                    if e.type == "dir":
                        stack.append(e.digest)  # type: ignore[arg-type]
        for digest, tree_file in loose_trees:
            if digest not in reachable:
                os.unlink(tree_file)
    return removed
