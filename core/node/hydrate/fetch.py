"""Step 3 of a hydrate: bring the release's bytes into the node's cache, verified.

The verified envelope is kept at ``releases/<hex>/release.json``. The image's tree objects come
level by level, in parallel (unchanged directories of an earlier release are read locally), then
every file object missing from ``cache/objects``: each download goes to ``cache/tmp``, is
decompressed and re-hashed by the store (in one piece up to 32 MiB, large ones written with
``O_DIRECT``: ``core.store.codec``; streaming beyond), and only then renamed into the cache
(read-only). When the store has packs for the image (``core.store.packs``) and many entries are
missing (a level of trees lacking many or all of its trees, or many file objects: the pack list
and index are read only then, ``fetch_trees``), the missing trees the verified root reaches
(compressed frames in one read, decoded only when reached: ``prefetch_reached_trees``) and small
files (written in place) come from a few byte-range reads of the pack instead, verified the
same way; large objects and anything the pack lacks are still fetched one by one. The image's
trees are kept as one bundle file, ``cache/trees/images/<root>``, re-hashed tree by tree whenever
a later hydrate reads them; trees fetched loose are folded into it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.durable import atomic_write
from core.errors import NotFound, StoreError
from core.node.hydrate.bundles import Bundled
from core.node.hydrate.cache import Seal, cache_names, cached_ok, copy_into_cache
from core.node.hydrate.fetcher import Fetcher, Job
from core.node.hydrate.result import HydrateProgress, HydrateResult
from core.node.hydrate.trees import NodeTrees
from core.node.hydrate.verify import Verified
from core.node.root import EXEC_SUFFIX, NodeRoot, cache_name
from core.store.base import Store
from core.store.materialize import ImagePlan
from core.store.packs import (
    PACK_MIN_MISSING,
    PackIndex,
    choose_whole_packs,
    decode_entry,
    fetch_packed_frames,
    load_pack_index,
    max_index_entries,
    tree_frame_budget,
)
from core.store.trees import MAX_TREE_BYTES


def keep_release(node: NodeRoot, verified: Verified) -> None:
    """The verified envelope at ``releases/<hex>/release.json`` (what ``local_release`` reads)."""
    rel_dir = node.release_dir(verified.release_id)
    rel_dir.mkdir(parents=True, exist_ok=True)
    if not (rel_dir / "release.json").is_file():
        atomic_write(rel_dir / "release.json", verified.envelope, 0o444)


def usable_pack(
    store: Store, node: NodeRoot, release_id: str, arch: str, bundled: Bundled, files: int, objects: set[str]
) -> PackIndex | None:
    """The image's pack index, if the store has one and at least ``PACK_MIN_MISSING`` of its entries
    are missing here (for a handful of objects, a few parallel GETs cost no more than ranges). A
    packed store (``store.packed``: its trees and small objects exist only in packs) is read from
    its packs whenever anything they hold is missing, and through a cache only by whole packs.

    ``files`` is the image's signed file count: an index listing far more entries than such an
    image can have is not used (``max_index_entries``; loose objects instead). ``objects`` is the
    listing of ``cache/objects`` (``cache_names``), made once per hydrate.

    Through a cache (``store.behind_cache``: a proxy, or answers with ``Via``/``X-Cache``), only
    requests a cache keeps are made: packs the node lacks most of are read whole, the rest of
    their objects loose (``choose_whole_packs``), so the next node is served by the cache."""
    index = load_pack_index(store, release_id, arch, max_index_entries(files))
    if index is None:
        return None
    trees = cache_names(node.trees)
    missing = []
    for e in index.entries:
        if e.kind == "tree":
            here = e.digest in bundled or cache_name(e.digest) in trees
        else:
            here = cache_name(e.digest) in objects or cache_name(e.digest, True) in objects
        if not here:
            missing.append(e.digest)
    if len(missing) < (1 if store.packed else PACK_MIN_MISSING):
        return None
    return choose_whole_packs(index, missing, bool(getattr(store, "behind_cache", False)), store.packed)


def fetch_trees(
    fetcher: Fetcher,
    trees: NodeTrees,
    root: str,
    find_pack: Callable[[], PackIndex | None],
    prog: HydrateProgress,
    result: HydrateResult,
    files: int = 0,
) -> PackIndex | None:
    """Every tree of the image below ``root``, kept as the image's bundle; ``files`` is the image's
    signed file count. Returns the image's pack if it was needed for the trees.

    Trees come loose, level by level, until a level lacks ``PACK_MIN_MISSING`` trees or more, or all
    of its trees (``NodeTrees.load_all``): only then is ``find_pack`` asked (``usable_pack``: the
    pack list and index, read and checked, cost more than a few loose trees), and what the pack
    holds below ``root`` comes from it. So an incremental hydrate, whose few new trees sit along
    the paths to what changed, reads no index; a node that holds no image's trees yet (no
    bundle), or hydrates from a packed store (no loose trees there), asks for the pack at once.
    """
    prog.phase("trees")
    pack: PackIndex | None = None

    def from_pack() -> None:
        nonlocal pack
        pack = find_pack()
        if pack is not None:
            prefetch_reached_trees(fetcher, trees, pack, root, files)

    try:
        fresh = not trees.bundled or fetcher.store.packed
        if fresh:
            from_pack()
        trees.load_all(root, None if fresh else from_pack, PACK_MIN_MISSING)
    except NotFound as exc:
        raise StoreError(f"store {fetcher.store.location} is incomplete: {exc}") from None
    trees.save_bundle(root)
    result.fetched_trees, result.tree_bytes = trees.fetched, trees.fetched_bytes
    return pack


def missing_objects(plan: ImagePlan, cached: set[str]) -> int:
    """How many distinct file objects of ``plan`` the cache listing ``cached`` lacks (in any mode)."""
    hexes = {h for _, h, _, _ in plan.files}
    return sum(1 for h in hexes if (n := f"{h[:2]}/{h[2:]}") not in cached and n + EXEC_SUFFIX not in cached)


def prefetch_reached_trees(fetcher: Fetcher, trees: NodeTrees, pack: PackIndex, root: str, files: int) -> None:
    """The trees below ``root`` that the pack holds and the cache lacks, decompressed and verified
    only when reached from ``root`` (the pack's index is unsigned: see ``core.store.packs``).

    An honest pack's trees come in one go: the frames of every tree entry the cache lacks, if
    they fit ``tree_frame_budget`` of the signed file count (compressed; nothing is inflated
    yet). Then a walk from the root decodes the frames it reaches, level by level, fetching from
    the pack those of a level it does not have yet (so a lying index costs round trips, never
    memory). Frames no walk reaches are dropped undecoded. Trees the pack does not deliver are
    left to ``NodeTrees.load_all`` (loose).
    """
    store, workers = fetcher.store, fetcher.workers
    listed = [e for e in pack.entries if e.kind == "tree" and not trees.have(e.digest)]
    frames: dict[str, memoryview] = {}
    if sum(e.length for e in listed) <= tree_frame_budget(files):
        frames = fetch_packed_frames(store, pack, [e.digest for e in listed], MAX_TREE_BYTES, workers)
    level, seen = [root], {root}
    while level:
        lacking = [d for d in level if not trees.have(d) and d not in frames and d in pack.by_digest]
        if lacking:
            frames.update(fetch_packed_frames(store, pack, lacking, MAX_TREE_BYTES, workers))
        for d in level:
            frame = frames.pop(d, None)
            if frame is not None and not trees.have(d):
                data = decode_entry(pack.by_digest[d], frame, MAX_TREE_BYTES)
                trees.fresh[d] = data
                trees.fetched += 1
                trees.fetched_bytes += len(data)
        nxt: list[str] = []
        for d in level:
            if not trees.have(d):
                continue  # not in the pack: load_all fetches it (and what is below) loose
            for e in trees.entries(d):
                if e.type == "dir" and e.digest not in seen:
                    seen.add(e.digest)  # type: ignore[arg-type]
                    nxt.append(e.digest)  # type: ignore[arg-type]
        level = nxt
    frames.clear()


def fetch_objects(
    fetcher: Fetcher,
    plan: ImagePlan,
    pack: PackIndex | None,
    prog: HydrateProgress,
    result: HydrateResult,
    cached: set[str],
    ledger: dict[str, Seal],
) -> set[str]:
    """Every file object of ``plan`` into the cache under the mode(s) it is needed with: reused when
    a cached copy checks out (``cached_ok`` against the ledger's seals), fetched otherwise, copied
    locally for its other mode. ``cached`` is the listing of ``cache/objects`` (``cache_names``),
    ``ledger`` the node's ``read_ledger``. Returns the cache names of them all (verified by this run)."""
    node = fetcher.node
    objects = str(node.objects)
    needed: dict[str, tuple[int, set[bool]]] = {}
    for _, h, x, size in plan.files:
        _, modes = needed.setdefault(h, (size, set()))
        modes.add(x)
    jobs: list[Job] = []
    copies: list[tuple[Path, Path, int]] = []
    names: set[str] = set()
    for h, (size, modes) in needed.items():
        digest, plain = "sha256:" + h, f"{h[:2]}/{h[2:]}"
        present = [
            x
            for x in (False, True)
            if (name := plain + EXEC_SUFFIX if x else plain) in cached
            and cached_ok(f"{objects}/{name}", digest, size, ledger, name)
        ]
        if present:
            src = present[0]
            result.reused_objects += 1
            result.reused_bytes += size
        else:
            src = min(modes)
            jobs.append((digest, node.object_path(digest, src), size, 0o555 if src else 0o444))
            present = [src]
            result.fetched_objects += 1
            result.fetched_bytes += size
        for x in modes - set(present):  # needed with the other mode: a local copy, not a fetch
            copies.append((node.object_path(digest, src), node.object_path(digest, x), 0o555 if x else 0o444))
        names.update(plain + EXEC_SUFFIX if x else plain for x in modes)
    prog.start_objects(len(jobs), result.fetched_bytes)
    prog.phase(f"objects: {len(jobs)} to fetch, {result.reused_objects} reused")
    try:
        fetcher.fetch_all(pack, jobs, prog.object_done)
    except NotFound as exc:
        raise StoreError(f"store {fetcher.store.location} is incomplete: {exc}") from None
    if pack is not None:
        pack.drop_spool()
    for src_path, dest, mode in copies:
        copy_into_cache(src_path, dest, mode, fetcher.run_tmp)
    return names
