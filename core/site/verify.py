"""Verify the store: trusted signatures, completeness, and with ``deep`` the bytes of every object.

Problems are reported as ``(release, image, path, kind)`` so an operator can see exactly what is
wrong and where. Each distinct tree and object is checked once, however many images share it;
what depends on a tree's position is checked per image: its depth (``too-deep`` past
``MAX_TREE_DEPTH`` levels) and where each link leads from where it sits (``bad-link``: out of
the image, or a loop; ``core.model.links``). Walks are iterative: no nesting exhausts the stack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from core.errors import BadInput, CorruptObject, NotFound, TrustError
from core.model.links import bad_links
from core.model.manifest import Entry
from core.site.catalogue import load_release
from core.site.site import Site
from core.store.trees import TreeReader, link_positions, tree_facts, tree_lookup
from core.trust.releases import PayloadMismatch


@dataclass
class Problem:
    release: str
    image: str
    path: str
    kind: str
    detail: str = ""

    def to_json(self) -> dict:
        return dict(self.__dict__)

    def line(self) -> str:
        where = "/".join(p for p in (self.image, self.path) if p)
        return f"{self.release[7:19]} {where or '-'}: {self.kind}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class VerifyReport:
    releases: int = 0
    trees: int = 0
    objects: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def trust_failure(self) -> bool:
        return any(p.kind in ("signature", "payload-hash", "channel") for p in self.problems)

    def to_json(self) -> dict:
        return {
            "releases": self.releases,
            "trees": self.trees,
            "objects": self.objects,
            "ok": not self.problems,
            "problems": [p.to_json() for p in self.problems],
        }


def verify_releases(
    site: Site, release_ids: list[str], *, deep: bool = False, progress: Callable[[int, int], None] | None = None
) -> VerifyReport:
    """Check each release; ``deep`` re-hashes every object (trees are always re-hashed)."""
    store = site.store
    reader = TreeReader(store)
    report = VerifyReport()
    object_state: dict[str, str | None] = {}  # digest -> problem kind or None

    def check_object(digest: str, size: int) -> str | None:
        if digest in object_state:
            return object_state[digest]
        kind: str | None = None
        if deep:
            try:
                store.get_object(digest, max_size=size)
            except NotFound:
                kind = "missing-object"
            except CorruptObject:
                kind = "corrupt-object"
        elif not store.has_object(digest):
            kind = "missing-object"
        object_state[digest] = kind
        report.objects += 1
        return kind

    tree_problems: dict[str, list[tuple[str, str, str]]] = {}
    facts: dict[str, tuple[int, bool]] = {}

    def readable(digest: str, dirpath: str = "") -> list[Entry]:
        """A tree's entries, or none when it cannot be read (``problems_below`` reports why)."""
        try:
            return reader.entries(digest)
        except (NotFound, CorruptObject, BadInput):
            return []

    def problems_below(root: str) -> list[tuple[str, str, str]]:
        """(relative path, kind, detail) of every problem under a tree, computed once per digest,
        children before parents (iteratively)."""
        stack = [(root, False)]
        while stack:
            digest, children_done = stack.pop()
            if digest in tree_problems:
                continue
            if not children_done:
                try:
                    entries = reader.entries(digest)
                    report.trees += 1
                except NotFound:
                    tree_problems[digest] = [("", "missing-tree", digest)]
                except CorruptObject:
                    tree_problems[digest] = [("", "corrupt-tree", digest)]
                except BadInput as exc:
                    tree_problems[digest] = [("", "malformed-tree", str(exc))]
                else:
                    stack.append((digest, True))
                    subdirs = [e.digest for e in entries if e.type == "dir" and e.digest not in tree_problems]
                    stack.extend((d, False) for d in subdirs if d is not None)
                continue
            found: list[tuple[str, str, str]] = []
            for e in reader.entries(digest):
                if e.type == "dir":
                    found += [(f"{e.name}/{p}" if p else e.name, k, d) for p, k, d in tree_problems[e.digest]]  # type: ignore[index]
                elif e.type == "file":
                    kind = check_object(e.digest, e.size)  # type: ignore[arg-type]
                    if kind:
                        found.append((e.name, kind, e.digest or ""))
            tree_problems[digest] = found
        return tree_problems[root]

    def image_problems(root: str) -> list[tuple[str, str, str]]:
        """The image's depth first (nothing else is walked past it), its trees, then its links."""
        try:
            tree_facts(readable, root, facts)
        except BadInput as exc:
            return [("", "too-deep", str(exc))]
        found = problems_below(root)
        links = link_positions(readable, root, facts)
        if links:
            found = found + [(exc.path, "bad-link", str(exc)) for exc in bad_links(links, tree_lookup(readable, root))]
        return found

    for n, rid in enumerate(release_ids, 1):
        report.releases += 1
        try:
            rel = load_release(site, rid)
        except PayloadMismatch as exc:
            report.problems.append(Problem(rid, "", "", "payload-hash", str(exc)))
            continue
        except TrustError as exc:
            report.problems.append(Problem(rid, "", "", "signature", str(exc)))
            continue
        except (BadInput, NotFound) as exc:
            report.problems.append(Problem(rid, "", "", "malformed-release", str(exc)))
            continue
        for arch, image in sorted(rel.images.items()):
            found = image_problems(image.root)
            if store.packed:
                found = found + own_pack_problems(site, reader, rid, arch, image.root)
            for path, kind, detail in found:
                report.problems.append(Problem(rid, arch, path or ".", kind, detail))
        if progress:
            progress(n, len(release_ids))
    return report


def own_pack_problems(site: Site, reader: TreeReader, rid: str, arch: str, root: str) -> list[tuple[str, str, str]]:
    """A packed store's image must find every tree and small object it names in its own packs:
    gc keeps exactly the packs that live releases' pack lists name, so an object found only in
    another release's pack would be lost with that release. Trees that cannot be read are left
    to ``problems_below``, which reports them."""
    from core.store.packs import PACK_MAX_OBJECT, load_pack_index

    index = load_pack_index(site.store, rid, arch)
    if index is None:
        return [("", "pack-list", "no readable pack list and indexes for this image: gc would drop its objects")]
    needed, stack, seen = set(), [root], {root}
    while stack:
        digest = stack.pop()
        needed.add(digest)
        try:
            entries = reader.entries(digest)
        except (NotFound, CorruptObject, BadInput):
            continue
        for e in entries:
            if e.type == "dir" and e.digest not in seen:
                seen.add(e.digest)  # type: ignore[arg-type]
                stack.append(e.digest)  # type: ignore[arg-type]
            elif e.type == "file" and e.size <= PACK_MAX_OBJECT:
                needed.add(e.digest)
    lacking = needed - index.by_digest.keys()
    if lacking:
        return [("", "not-in-own-packs", f"{len(lacking)} object(s) only elsewhere, e.g. {min(lacking)}")]
    return []
