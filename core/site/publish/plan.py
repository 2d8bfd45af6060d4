"""Step 1 of a publish: decide everything, write nothing.

Validate the inputs (name, signing key, images, parent), scan and hash the trees, build the tree
objects in memory, run the kind-specific detection and build the release payload. Every bad
input fails here, before the store is touched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.clock import format_time
from core.errors import BadInput
from core.model.digest import digest_bytes
from core.model.manifest import (
    MODE_DIR,
    MODE_EXEC,
    MODE_FILE,
    MODE_LINK,
    Entry,
    Image,
    build_payload,
    check_release_name,
    release_id_of,
    tree_bytes,
)
from core.site.catalogue import resolve_release
from core.site.publish.detect import detect_kind
from core.site.publish.hashing import hash_all
from core.site.publish.result import Progress, PublishResult
from core.site.scan import ScannedDir, scan_tree
from core.site.site import Site
from core.store.base import release_path
from core.trust.signing import SigningKey


@dataclass
class Plan:
    """A publish decided: the payload to sign and every object it needs, nothing written yet."""

    name: str
    signing_key: SigningKey
    workers: int
    payload: bytes
    result: PublishResult  # filled in as the steps go
    image_meta: dict[str, Image]
    tree_objects: dict[str, bytes]  # digest -> canonical tree bytes, every tree of every image
    by_digest: dict[str, tuple[str, int]] = field(default_factory=dict)  # file object -> (a path, size)
    contents: dict[str, bytes] = field(default_factory=dict)  # small file object -> the bytes hashed
    tree_entries: dict[str, list[Entry]] = field(default_factory=dict)  # tree -> its entries, sorted (for packs)

    @property
    def release_id(self) -> str:
        return self.result.release_id


def build_tree(
    node: ScannedDir, out: dict[str, bytes], parsed: dict[str, list[Entry]] | None = None
) -> tuple[str, int, int]:
    """Build tree objects bottom-up into ``out`` (and their sorted entries into ``parsed``, so the
    packs need not parse them again); return (digest, bytes below, files below)."""
    entries: list[Entry] = []
    total = 0
    nfiles = 0
    for name, f in node.files.items():
        entries.append(Entry(name, "file", MODE_EXEC if f.executable else MODE_FILE, f.size, f.digest))
        total += f.size
        nfiles += 1
    for name, target in node.links.items():
        entries.append(Entry(name, "link", MODE_LINK, len(target.encode()), target=target))
    for name, sub in node.dirs.items():
        d, size, n = build_tree(sub, out, parsed)
        entries.append(Entry(name, "dir", MODE_DIR, size, d))
        total += size
        nfiles += n
    entries.sort(key=lambda e: e.name)
    data = tree_bytes(entries)
    digest = digest_bytes(data)
    out[digest] = data
    if parsed is not None:
        parsed[digest] = entries
    return digest, total, nfiles


def plan(
    site: Site,
    name: str,
    images: dict[str, Path],
    *,
    label: str = "",
    parent: str | None = None,
    builder: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
    smoke: dict[str, Any] | None = None,
    cpu_targets: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> Plan:
    """Validate, scan, hash, build trees, detect, build the payload (DESIGN §3): nothing written."""
    import core.arch as archmod

    check_release_name(name)
    signing_key = site.signing_key  # a missing or unreadable key fails here, before any write
    if not images:
        raise BadInput("publish needs at least one --image ARCH=DIR")
    for a in images:
        archmod.check_microarch(a)
    if parent:
        parent = resolve_release(site, parent)
    trees = {a: scan_tree(Path(d)) for a, d in sorted(images.items())}
    workers = site.config.publish.workers or min(4, (os.cpu_count() or 2))
    result = PublishResult(name=name, label=label)
    result.hashed_files, result.cached_files = hash_all(site, list(trees.values()), workers, progress)

    tree_objects: dict[str, bytes] = {}
    tree_entries: dict[str, list[Entry]] = {}
    roots = {a: build_tree(tree.top, tree_objects, tree_entries) for a, tree in trees.items()}
    detected = detect_kind(
        trees, dict(builder or {"kind": "tree", "tool_version": "depot-console"}), source, cpu_targets
    )
    image_meta: dict[str, Image] = {}
    for a, (root, size, nfiles) in roots.items():
        target = detected.cpu_targets[a]
        image_meta[a] = Image(a, root, nfiles, size, target)
        result.images[a] = {"root": root, "files": nfiles, "bytes": size, "cpu_target": target}
        result.files += nfiles
        result.bytes += size

    payload = build_payload(
        name=name,
        label=label,
        created=format_time(site.now()),
        parent=parent,
        builder=detected.builder,
        source=detected.source,
        images=image_meta,
        smoke=smoke,
    )
    result.release_id = release_id_of(payload)
    if site.store.read_file(release_path(result.release_id)) is not None:  # same payload (same second)
        result.already_published = True

    # Unique file objects with one representative path each.
    by_digest: dict[str, tuple[str, int]] = {}
    contents: dict[str, bytes] = {}
    for tree in trees.values():
        for f in tree.files:
            by_digest.setdefault(f.digest, (f.abspath, f.size))  # type: ignore[arg-type]
            if f.data is not None:
                contents.setdefault(f.digest, f.data)  # type: ignore[arg-type]
                f.data = None
    return Plan(
        name, signing_key, workers, payload, result, image_meta, tree_objects, by_digest, contents, tree_entries
    )
