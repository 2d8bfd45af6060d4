"""The node's tree cache: tree objects from the cache (re-hashed) or fetched, parsed once."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

from core.errors import CorruptObject
from core.model.digest import digest_bytes
from core.model.manifest import MAX_TREE_DEPTH, Entry, parse_tree
from core.node.hydrate.bundles import BUNDLE_DIR, Bundled, load_bundles, write_bundle
from core.node.hydrate.cache import cache_names
from core.node.hydrate.fetcher import Fetcher
from core.node.root import NodeRoot
from core.store.packs import PackIndex, fetch_packed_bytes
from core.store.trees import MAX_TREE_BYTES, too_deep, walk_tree


class NodeTrees:
    """Tree objects from the node's cache (re-hashed) or fetched, parsed once.

    The cache keeps the trees of each image in one bundle file, ``cache/trees/images/<root hex>``
    (a full hydrate writes one file, not one per directory); trees fetched loose (level by level,
    when there is no pack) are also kept as ``cache/trees/<2>/<62>`` files. Either way a tree is
    re-hashed before use, so a damaged cache costs a failed hydrate (and the damaged file), never
    a wrong image.
    """

    def __init__(self, node: NodeRoot, fetcher: Fetcher, bundled: Bundled | None = None) -> None:
        self.node = node
        self.fetcher = fetcher
        self.bundled = load_bundles(node) if bundled is None else bundled
        self.fresh: dict[str, bytes] = {}  # fetched from a pack and verified
        self.raw: dict[str, bytes] = {}  # verified bytes of every tree parsed
        self.parsed: dict[str, list[Entry]] = {}
        self.fetched = 0
        self.fetched_bytes = 0
        self.fetched_loose: list[str] = []  # fetched by this run as cache/trees/<2>/<62> files
        self.loose = {
            "sha256:" + name.replace("/", "")
            for name in cache_names(node.trees)
            if not name.startswith(BUNDLE_DIR + "/")
        }  # cache/trees/<2>/<62> files

    def have(self, digest: str) -> bool:
        return digest in self.fresh or digest in self.bundled or digest in self.loose

    def _count(self, digest: str, n: int) -> None:
        self.loose.add(digest)
        self.fetched_loose.append(digest)
        self.fetched += 1
        self.fetched_bytes += n

    def prefetch(self, index: PackIndex) -> None:
        """Fetch every tree of the pack this cache lacks in one go (no level-by-level round trips)."""
        missing = [e.digest for e in index.entries if e.kind == "tree" and not self.have(e.digest)]
        got = fetch_packed_bytes(self.fetcher.store, index, missing, MAX_TREE_BYTES, self.fetcher.workers)
        self.fresh.update(got)
        self.fetched += len(got)
        self.fetched_bytes += sum(len(d) for d in got.values())

    def load_all(self, root: str, many: Callable[[], None] | None = None, threshold: int = 0) -> None:
        """Make every tree below ``root`` available, one parallel fetch per directory level; an
        image deeper than ``MAX_TREE_DEPTH`` levels is refused (``BadInput``) before fetching more.

        The first time a level lacks at least ``threshold`` trees, or every one of its trees (below
        the root: a node that holds nothing of this part of the image), ``many()`` is called first
        (it may bring them from a pack: ``fetch_trees``); what is still missing is fetched loose.
        """
        level, seen, depth = [root], {root}, 0
        while level:
            if depth > MAX_TREE_DEPTH:
                raise too_deep(f"tree {root[:19]}", f"tree {level[0][:19]}")
            depth += 1
            missing = [d for d in level if not self.have(d)]
            if many is not None and (len(missing) >= threshold or depth > 1 and missing and len(missing) == len(level)):
                many()
                many = None
                missing = [d for d in level if not self.have(d)]
            self.fetcher.fetch([(d, self.node.tree_path(d), MAX_TREE_BYTES, 0o444) for d in missing], self._count)
            nxt: list[str] = []
            for d in level:
                for e in self.entries(d):
                    if e.type == "dir" and e.digest not in seen:
                        seen.add(e.digest)  # type: ignore[arg-type]
                        nxt.append(e.digest)  # type: ignore[arg-type]
            level = nxt

    def save_bundle(self, root: str) -> None:
        """Keep the trees of ``root``'s image (after ``load_all``) as its bundle, and remove the
        tree files this run fetched loose: the bundle holds them now, and a cache without loose
        tree files is pruned without walking any tree (``prune``)."""
        write_bundle(self.node, root, self.raw, self.fetcher.run_tmp)
        for digest in self.fetched_loose:
            with contextlib.suppress(FileNotFoundError):
                self.node.tree_path(digest).unlink()
            self.loose.discard(digest)
        self.fetched_loose.clear()

    def entries(self, digest: str, dirpath: str = "") -> list[Entry]:
        hit = self.parsed.get(digest)
        if hit is None:
            data = self.fresh.get(digest)
            if data is None:
                data, path = self.bundled.get(digest) or (None, self.node.tree_path(digest))
                if data is None:
                    data = path.read_bytes()
                if digest_bytes(data) != digest:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    raise CorruptObject(f"cached tree {digest} is corrupt ({path.name} removed; run hydrate again)")
            self.raw[digest] = data
            hit = self.parsed[digest] = parse_tree(data, digest, dirpath)
        return hit

    def walk(self, root: str, prefix: str = "") -> Iterable[tuple[str, Entry]]:
        """Every ``(relpath, entry)`` of the image, iteratively, at most ``MAX_TREE_DEPTH`` levels
        (``plan_image`` then checks where its links lead, per position)."""
        return walk_tree(self.entries, root, prefix)
