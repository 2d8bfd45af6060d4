"""The tree bundle format: every tree of one image in one cache file.

``cache/trees/images/<root hex>`` is a sequence of ``<digest> <length>\\n<tree bytes>`` records,
written under a temp name then renamed (a reader sees all of it or nothing). The bytes are not
trusted: ``NodeTrees.entries`` re-hashes each tree before using it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from core.durable import atomic_write
from core.node.root import NodeRoot

BUNDLE_DIR = "images"

#: digest -> (tree bytes, as read, unverified; the bundle file they came from)
Bundled = dict[str, tuple[bytes, Path]]


def bundle_path(node: NodeRoot, root: str) -> Path:
    """``cache/trees/images/<root hex>``: every tree of one image in one file (see ``NodeTrees``)."""
    return node.trees / BUNDLE_DIR / root[7:]


def load_bundles(node: NodeRoot, roots: Iterable[str] | None = None) -> Bundled:
    """digest -> (tree bytes, bundle file) from the image bundles (all, or those of ``roots``).

    The bytes are unverified here: ``NodeTrees.entries`` re-hashes each tree before using it. A
    bundle that does not parse contributes what precedes the damage.
    """
    out: Bundled = {}
    base = node.trees / BUNDLE_DIR
    try:
        names = os.listdir(base) if roots is None else [r[7:] for r in roots]
    except FileNotFoundError:
        return out
    for name in names:
        path = base / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        pos = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            head = data[pos:nl].split(b" ") if nl > 0 else []
            if len(head) != 2 or not head[1].isdigit():
                break
            digest, end = head[0].decode("ascii", "replace"), nl + 1 + int(head[1])
            if end > len(data):
                break
            out.setdefault(digest, (data[nl + 1 : end], path))
            pos = end
    return out


def write_bundle(node: NodeRoot, root: str, trees: dict[str, bytes], tmpdir: Path) -> None:
    """Write the bundle of ``root`` (temp name, then rename: a reader sees all of it or nothing)."""
    dest = bundle_path(node, root)
    if dest.is_file():
        return
    dest.parent.mkdir(exist_ok=True)
    parts = []
    for digest, data in trees.items():
        parts += [f"{digest} {len(data)}\n".encode(), data]
    atomic_write(dest, parts, 0o444, durable=False, tmp_dir=tmpdir)
