"""Compare two releases: images, packages, and files per common image (DESIGN §1 diff.py).

The file comparison walks both Merkle trees together and skips any subtree whose digest is equal
on both sides, so the work is proportional to what changed, not to the size of the depot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.model.manifest import MAX_TREE_DEPTH, Entry, Release
from core.site.catalogue import load_release
from core.site.site import Site
from core.store.trees import TreeReader, too_deep


@dataclass
class FileChange:
    path: str
    change: str  # added | removed | modified | type-changed
    old_size: int
    new_size: int

    @property
    def delta(self) -> int:
        return self.new_size - self.old_size

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "change": self.change,
            "old_size": self.old_size,
            "new_size": self.new_size,
            "delta": self.delta,
        }


@dataclass
class ImageDiff:
    arch: str
    same: bool
    changes: list[FileChange] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {"added": 0, "removed": 0, "modified": 0}
        for c in self.changes:
            out["modified" if c.change == "type-changed" else c.change] += 1
        return out

    @property
    def delta(self) -> int:
        return sum(c.delta for c in self.changes)

    def to_json(self) -> dict:
        return {
            "arch": self.arch,
            "same": self.same,
            **self.counts(),
            "bytes_delta": self.delta,
            "files": [c.to_json() for c in self.changes],
        }


@dataclass
class ReleaseDiff:
    a: Release
    b: Release
    images_added: list[str]
    images_removed: list[str]
    images: list[ImageDiff]
    packages_added: list[dict]
    packages_removed: list[dict]
    packages_changed: list[dict]

    def to_json(self, files: bool = True) -> dict:
        imgs = [i.to_json() for i in self.images]
        if not files:
            for i in imgs:
                i.pop("files")
        return {
            "a": self.a.id,
            "b": self.b.id,
            "images_added": self.images_added,
            "images_removed": self.images_removed,
            "images": imgs,
            "packages": {
                "added": self.packages_added,
                "removed": self.packages_removed,
                "changed": self.packages_changed,
            },
        }


def _leaf_size(e: Entry) -> int:
    return e.size if e.type != "link" else 0


def diff_trees(reader: TreeReader, a: str | None, b: str | None, prefix: str = "", depth: int = 0) -> list[FileChange]:
    """File-level changes from tree ``a`` to tree ``b`` (either may be None for empty).

    Recursion is bounded by ``MAX_TREE_DEPTH`` (a hand-made store tree nested deeper is refused
    with one line, as publish, verify and hydrate refuse it)."""
    if a == b:
        return []
    if depth > MAX_TREE_DEPTH:
        raise too_deep("diff", prefix)
    ea = {e.name: e for e in reader.entries(a, prefix)} if a else {}
    eb = {e.name: e for e in reader.entries(b, prefix)} if b else {}
    out: list[FileChange] = []
    for name in sorted(set(ea) | set(eb)):
        x, y = ea.get(name), eb.get(name)
        path = f"{prefix}/{name}" if prefix else name
        if x and y and x == y:
            continue
        if x and y and x.type == "dir" and y.type == "dir":
            out.extend(diff_trees(reader, x.digest, y.digest, path, depth + 1))
            continue
        if x and x.type == "dir":
            out.extend(diff_trees(reader, x.digest, None, path, depth + 1))
            x = None
        if y and y.type == "dir":
            out.extend(diff_trees(reader, None, y.digest, path, depth + 1))
            y = None
        if x and y:
            kind = "modified" if x.type == y.type else "type-changed"
            out.append(FileChange(path, kind, _leaf_size(x), _leaf_size(y)))
        elif x:
            out.append(FileChange(path, "removed", _leaf_size(x), 0))
        elif y:
            out.append(FileChange(path, "added", 0, _leaf_size(y)))
    return out


def _packages(rel: Release) -> dict[str, dict]:
    return {p["name"]: p for p in rel.packages}


def diff_releases(site: Site, a_id: str, b_id: str, *, files: bool = True) -> ReleaseDiff:
    """Compare release ``a`` (old) with ``b`` (new)."""
    a, b = load_release(site, a_id), load_release(site, b_id)
    reader = TreeReader(site.store)
    images = []
    for arch in sorted(set(a.images) & set(b.images)):
        ra, rb = a.images[arch].root, b.images[arch].root
        changes = diff_trees(reader, ra, rb) if files or ra != rb else []
        changes.sort(key=lambda c: (-abs(c.delta), c.path))
        images.append(ImageDiff(arch, ra == rb, changes))
    pa, pb = _packages(a), _packages(b)
    changed = [
        {"name": n, "from": pa[n].get("version", ""), "to": pb[n].get("version", "")}
        for n in sorted(set(pa) & set(pb))
        if pa[n].get("version") != pb[n].get("version") or pa[n].get("uuid") != pb[n].get("uuid")
    ]
    return ReleaseDiff(
        a,
        b,
        sorted(set(b.images) - set(a.images)),
        sorted(set(a.images) - set(b.images)),
        images,
        [pb[n] for n in sorted(set(pb) - set(pa))],
        [pa[n] for n in sorted(set(pa) - set(pb))],
        changed,
    )
