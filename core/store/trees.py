"""Reading Merkle trees from a store: a cached tree reader and a depth-first walk.

Tree objects are small and shared between images and releases, so readers keep an LRU of parsed
trees; every tree is verified (re-hashed) when fetched, like any other object.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator

from core.model.manifest import Entry, parse_tree
from core.store.base import Store

MAX_TREE_BYTES = 256 << 20


def walk_tree(entries: Callable[[str, str], list[Entry]], root: str, prefix: str = "") -> Iterator[tuple[str, Entry]]:
    """Depth-first ``(relpath, entry)`` below tree ``root``, parents before children.

    ``entries(digest, dirpath)`` supplies parsed trees: a store reader or a node's tree cache.
    """
    for e in entries(root, prefix):
        path = f"{prefix}/{e.name}" if prefix else e.name
        yield path, e
        if e.type == "dir":
            yield from walk_tree(entries, e.digest, path)  # type: ignore[arg-type]


class TreeReader:
    """Fetch, verify and parse tree objects, with an LRU cache keyed by digest."""

    def __init__(self, store: Store, cache_size: int = 65536) -> None:
        self.store = store
        self.cache: OrderedDict[str, list[Entry]] = OrderedDict()
        self.cache_size = cache_size

    def entries(self, digest: str, dirpath: str = "") -> list[Entry]:
        hit = self.cache.get(digest)
        if hit is not None:
            self.cache.move_to_end(digest)
            return hit
        entries = parse_tree(self.store.get_object(digest, max_size=MAX_TREE_BYTES), digest, dirpath)
        self.cache[digest] = entries
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return entries

    def walk(self, root: str, prefix: str = "") -> Iterator[tuple[str, Entry]]:
        """Yield ``(relpath, entry)`` for every entry below ``root``, parents before children."""
        return walk_tree(self.entries, root, prefix)

    def walk_unique(self, root: str, seen: set[str]) -> Iterator[tuple[str, Entry]]:
        """Like ``walk`` but descend into each distinct subtree digest once (for reachability)."""
        if root in seen:
            return
        seen.add(root)
        stack = [(root, "")]
        while stack:
            digest, prefix = stack.pop()
            for e in self.entries(digest, prefix):
                path = f"{prefix}/{e.name}" if prefix else e.name
                yield path, e
                if e.type == "dir" and e.digest not in seen:
                    seen.add(e.digest)  # type: ignore[arg-type]
                    stack.append((e.digest, path))  # type: ignore[arg-type]
