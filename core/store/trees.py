"""Reading Merkle trees from a store: a cached tree reader, a depth-first walk, and the image-wide
checks a tree object cannot carry (depth, where links lead).

Tree objects are small and shared between images and releases, so readers keep an LRU of parsed
trees; every tree is verified (re-hashed) when fetched, like any other object. Walks are
iterative and refuse images nested deeper than ``MAX_TREE_DEPTH`` directories (``BadInput``,
exit 2) before going further, so a hostile store cannot exhaust the stack.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator

from core.errors import BadInput
from core.model.links import check_links
from core.model.manifest import MAX_TREE_DEPTH, Entry, parse_tree
from core.store.base import Store

MAX_TREE_BYTES = 256 << 20

#: ``entries(digest, dirpath)``: the parsed tree ``digest`` (sitting at ``dirpath``, for messages).
Entries = Callable[[str, str], list[Entry]]


def too_deep(where: str, path: str) -> BadInput:
    shown = path if len(path) <= 80 else path[:80] + "…"
    return BadInput(f"{where}: directories nested deeper than {MAX_TREE_DEPTH} levels (at {shown}), refused")


def walk_tree(entries: Entries, root: str, prefix: str = "") -> Iterator[tuple[str, Entry]]:
    """Depth-first ``(relpath, entry)`` below tree ``root``, parents before children, entries of a
    directory in their (sorted) order; ``BadInput`` past ``MAX_TREE_DEPTH`` levels below ``root``.

    ``entries(digest, dirpath)`` supplies parsed trees: a store reader or a node's tree cache.
    """
    stack: list[tuple[Iterator[Entry], str, int]] = [(iter(entries(root, prefix)), prefix, 0)]
    while stack:
        it, dirpath, depth = stack[-1]
        e = next(it, None)
        if e is None:
            stack.pop()
            continue
        path = f"{dirpath}/{e.name}" if dirpath else e.name
        yield path, e
        if e.type == "dir":
            if depth + 1 > MAX_TREE_DEPTH:
                raise too_deep(f"tree {root[:19]}", path)
            stack.append((iter(entries(e.digest, path)), path, depth + 1))  # type: ignore[arg-type]


def tree_facts(
    entries: Entries, root: str, facts: dict[str, tuple[int, bool]] | None = None
) -> dict[str, tuple[int, bool]]:
    """``digest -> (directory levels below it, whether a link is below it)`` for every tree
    reachable from ``root``, each distinct tree visited once, iteratively (children before
    parents); ``facts`` carries what earlier calls found. ``BadInput`` as soon as a tree has more
    than ``MAX_TREE_DEPTH`` levels below it."""
    facts = {} if facts is None else facts
    stack: list[tuple[str, bool]] = [(root, False)]
    while stack:
        digest, children_done = stack.pop()
        if digest in facts:
            continue
        listed = entries(digest, "")
        if not children_done:
            stack.append((digest, True))
            stack.extend((e.digest, False) for e in listed if e.type == "dir" and e.digest not in facts)  # type: ignore[misc]
            continue
        height, links = 0, False
        for e in listed:
            if e.type == "link":
                links = True
            elif e.type == "dir":
                sub = facts.get(e.digest)  # type: ignore[arg-type]
                sub_height, sub_links = sub if sub is not None else (MAX_TREE_DEPTH, False)  # None: a cycle
                height, links = max(height, sub_height + 1), links or sub_links
        if height > MAX_TREE_DEPTH:
            raise too_deep(f"tree {root[:19]}", f"tree {digest[:19]}")
        facts[digest] = (height, links)
    return facts


def link_positions(entries: Entries, root: str, facts: dict[str, tuple[int, bool]]) -> list[tuple[str, str]]:
    """``(relpath, target)`` of every link of the image ``root``, at every position (a subtree
    shared by several directories yields its links at each), in walk order; subtrees without
    links (``facts``, from ``tree_facts``) are skipped."""
    out: list[tuple[str, str]] = []
    if not facts[root][1]:
        return out
    stack: list[tuple[Iterator[Entry], str]] = [(iter(entries(root, "")), "")]
    while stack:
        it, dirpath = stack[-1]
        e = next(it, None)
        if e is None:
            stack.pop()
            continue
        path = f"{dirpath}/{e.name}" if dirpath else e.name
        if e.type == "link":
            out.append((path, e.target))  # type: ignore[arg-type]
        elif e.type == "dir" and facts[e.digest][1]:  # type: ignore[index]
            stack.append((iter(entries(e.digest, path)), path))  # type: ignore[arg-type]
    return out


def tree_lookup(entries: Entries, root: str) -> Callable[[str], Entry | None]:
    """``lookup(relpath)`` over the image ``root``: the entry at that path, None if there is none."""
    names: dict[str, dict[str, Entry]] = {}

    def listing(digest: str) -> dict[str, Entry]:
        hit = names.get(digest)
        if hit is None:
            hit = names[digest] = {e.name: e for e in entries(digest, "")}
        return hit

    def lookup(relpath: str) -> Entry | None:
        digest = root
        e: Entry | None = None
        for part in relpath.split("/"):
            if e is not None:
                if e.type != "dir":
                    return None
                digest = e.digest  # type: ignore[assignment]
            e = listing(digest).get(part)
            if e is None:
                return None
        return e

    return lookup


def check_image(entries: Entries, root: str, where: str = "image") -> None:
    """An image's whole-tree rules: at most ``MAX_TREE_DEPTH`` levels, and every link, at every
    position, resolving inside the image (``core.model.links``); ``BadInput``/``LinkError``."""
    links = link_positions(entries, root, tree_facts(entries, root))
    if links:
        check_links(links, tree_lookup(entries, root), where)


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
