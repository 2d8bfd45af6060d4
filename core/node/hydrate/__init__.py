"""Node side of delivery: fetch what is missing, verify it, materialize, switch atomically, prune.

``hydrate`` brings ``<root>/current/<channel>`` (layout in ``core.node.root``) to the release a signed
channel pointer names, in an order that makes every interruption harmless:

1. verify the pointer against the node's high-water mark (replay, same version with other bytes,
   expiry, channel mismatch: ``TrustError``, exit 4), then the release envelope (signatures, payload
   hash = id);
2. choose the image for this CPU (``core.arch.choose_image``; a per-node override wins);
3. fetch the image's tree objects level by level, in parallel, into ``cache/trees`` (unchanged
   directories of an earlier release are read locally), then every file object missing from
   ``cache/objects``: each download goes to ``cache/tmp``, is decompressed and re-hashed by the
   store (in one piece up to 32 MiB, large ones written with ``O_DIRECT``: ``core.store.codec``;
   streaming beyond), and only then renamed into the cache (read-only). When the store has
   packs for the image (``core.store.packs``) and many entries are missing, the missing trees (all
   levels at once, into memory) and small files (written in place) come from a few
   byte-range reads of the pack instead, verified the same way; large objects and anything the
   pack lacks are still fetched one by one. The image's trees are kept as one bundle file,
   ``cache/trees/images/<root>``, re-hashed tree by tree whenever a later hydrate reads them;
4. materialize the image into ``releases/<hex>/.<arch>.tmp-…`` (its directories are made while
   the objects download) with hard links into the cache, then rename it to
   ``releases/<hex>/<arch>`` (an image directory exists only when complete);
5. ``syncfs`` the node's file system, switch ``current/<channel>`` (temp symlink + rename), and
   only then raise the high-water mark in ``state.json``;
6. prune images beyond the ``keep`` most recent per channel, and cache objects no image links to.

Killed at any moment (kill -9), a rerun finds verified objects in the cache, stray temp files and
directories that it removes, and completes. Any failure before step 5 leaves ``current`` as it was.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from core.arch import choose_image, host_microarch
from core.durable import atomic_write, syncfs
from core.errors import CheckFailed, CorruptObject, DepotError, NotFound, StoreError
from core.model.digest import digest_bytes, hash_file, is_digest, resolve_release_ref
from core.model.manifest import DEFAULT_MAX_MANIFEST_BYTES, Entry, Release, parse_tree
from core.node.root import NodeRoot, cache_name, default_workers, force_rmtree
from core.store.base import Store, channel_path, check_channel_name, release_path
from core.store.packs import PACK_MIN_MISSING, PackIndex, fetch_packed, fetch_packed_bytes, load_pack_index
from core.store.trees import MAX_TREE_BYTES, walk_tree
from core.trust.releases import release_from_envelope
from core.trust.signing import TrustSet, parse_envelope


class HydrateProgress:
    """Progress hooks (no-ops here; the CLI prints them on stderr)."""

    def phase(self, text: str) -> None:
        """A step started (``trees``, ``objects 120 (45 MB)``, ``materialize``…)."""

    def start_objects(self, count: int, nbytes: int) -> None:
        """The number and total size of file objects about to be fetched."""

    def object_done(self, digest: str, nbytes: int) -> None:
        """One file object fetched and verified (called from worker threads, serialized)."""


@dataclass
class HydrateResult:
    """What a hydrate did; ``to_json`` is the ``--json`` summary."""

    channel: str
    release: str
    image: str
    cpu: str
    reason: str
    version: int | None
    path: str
    fetched_objects: int = 0
    fetched_bytes: int = 0
    fetched_trees: int = 0
    tree_bytes: int = 0
    transferred_bytes: int | None = None
    reused_objects: int = 0
    reused_bytes: int = 0
    files: int = 0
    bytes: int = 0
    materialized: bool = False
    switched: bool = False
    previous: str | None = None
    pruned: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


# -- the release as the node knows it --------------------------------------------------------------
def local_release(node: NodeRoot, release_id: str) -> Release:
    """The release kept at ``releases/<hex>/release.json`` (verified when hydrated).

    Signatures were checked when it was fetched; here only the payload hash is re-checked, so a
    node can print env and run smoke with no trust set and no network.
    """
    path = node.release_dir(release_id) / "release.json"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"release {release_id[7:19]} is not on this node ({path} missing): hydrate first") from None
    from core.model.manifest import parse_payload

    env = parse_envelope(data, str(path))
    if digest_bytes(env.payload) != release_id:
        raise CorruptObject(f"{path}: payload does not hash to {release_id[7:19]} (edited?)")
    return parse_payload(env.payload, release_id, [])


def resolve_store_release(store: Store, ref: str) -> str:
    """A full release id from ``sha256:<hex>``, bare hex, or a unique prefix of >= 4 hex characters
    (``resolve_release_ref`` over the store's listing: a node has no catalogue)."""
    return resolve_release_ref(
        ref,
        lambda prefix: [r for r in store.list_release_ids() if r[7:].startswith(prefix)],
        where=f" in store {store.location}",
    )


# -- fetching into the cache -----------------------------------------------------------------------
class _Fetcher:
    """Parallel verified downloads: store -> ``cache/tmp/<run>/`` -> chmod -> rename into the cache."""

    def __init__(self, store: Store, node: NodeRoot, workers: int) -> None:
        self.store = store
        self.node = node
        self.workers = max(1, workers)
        self.run_tmp = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=node.tmp))
        self._seq = 0
        self._lock = threading.Lock()

    def fetch(
        self, jobs: list[tuple[str, Path, int | None, int]], on_done: Callable[[str, int], None] | None = None
    ) -> None:
        """``jobs``: ``(digest, final_path, size, mode)``; each lands at ``final_path`` verified."""
        if not jobs:
            return
        final = {}
        triples = []
        for digest, dest, size, mode in jobs:
            self._seq += 1
            tmp = str(self.run_tmp / f"{self._seq}")
            final[tmp] = (dest, mode)
            triples.append((digest, tmp, size))

        def done(digest: str, tmp: str) -> None:
            dest, mode = final[tmp]
            os.chmod(tmp, mode)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)
            if on_done is not None:
                n = dest.stat().st_size
                with self._lock:
                    on_done(digest, n)

        self.store.fetch_many(triples, max_workers=self.workers, on_done=done)

    def fetch_packed(
        self,
        index: PackIndex,
        jobs: list[tuple[str, Path, int | None, int]],
        on_done: Callable[[str, int], None] | None = None,
        workers: int | None = None,
    ) -> list[tuple[str, Path, int | None, int]]:
        """Fetch what the pack holds by byte ranges; return the jobs left for ``fetch``.

        Packs only accelerate: if one cannot be read (gone, no range support, server failing),
        whatever it did not deliver is left to the loose fetch. A pack entry that fails
        verification is a ``CorruptObject``, as a loose object would be.
        """

        def serialized(digest: str, n: int) -> None:
            with self._lock:
                on_done(digest, n)  # type: ignore[misc]

        try:
            return fetch_packed(self.store, index, jobs, workers or self.workers, on_done and serialized)
        except CorruptObject:
            raise
        except (StoreError, NotFound):
            return [j for j in jobs if not j[1].exists()]

    def fetch_all(
        self,
        index: PackIndex | None,
        jobs: list[tuple[str, Path, int | None, int]],
        on_done: Callable[[str, int], None] | None = None,
    ) -> None:
        """Fetch ``jobs``: the large objects loose (largest first, so the longest download does not
        start last) while, side by side, one thread takes the small ones from the pack by ranges;
        then, loose, whatever the pack could not deliver.

        Why this split of threads: a large object is mostly a wait on the disk (written with
        ``O_DIRECT``, see ``core.store.codec``), a pack's small files are mostly CPU (decode,
        create a file each); together they fill a small node's cores, while more pack threads only
        take turns on the GIL (measured on 2 cores, full hydrate through the CLI: 1.35 s against
        1.48 s one after the other).
        """
        loose, rest = jobs, []
        with ThreadPoolExecutor(max_workers=1) as side:
            if index is not None:
                packed = [j for j in jobs if j[0] in index.by_digest]
                loose = [j for j in jobs if j[0] not in index.by_digest]
                pending = side.submit(self.fetch_packed, index, packed, on_done, 1)
            self.fetch(sorted(loose, key=lambda j: -(j[2] or 0)), on_done)
        if index is not None:
            rest = pending.result()
        self.fetch(rest, on_done)

    def close(self) -> None:
        force_rmtree(self.run_tmp)


BUNDLE_DIR = "images"


def _bundle_path(node: NodeRoot, root: str) -> Path:
    """``cache/trees/images/<root hex>``: every tree of one image in one file (see ``_NodeTrees``)."""
    return node.trees / BUNDLE_DIR / root[7:]


def _load_bundles(node: NodeRoot, roots: Iterable[str] | None = None) -> dict[str, tuple[bytes, Path]]:
    """digest -> (tree bytes, bundle file) from the image bundles (all, or those of ``roots``).

    The bytes are unverified here: ``_NodeTrees.entries`` re-hashes each tree before using it. A
    bundle that does not parse contributes what precedes the damage.
    """
    out: dict[str, tuple[bytes, Path]] = {}
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


def _write_bundle(node: NodeRoot, root: str, trees: dict[str, bytes], tmpdir: Path) -> None:
    """Write the bundle of ``root`` (temp name, then rename: a reader sees all of it or nothing)."""
    dest = _bundle_path(node, root)
    if dest.is_file():
        return
    dest.parent.mkdir(exist_ok=True)
    parts = []
    for digest, data in trees.items():
        parts += [f"{digest} {len(data)}\n".encode(), data]
    atomic_write(dest, parts, 0o444, durable=False, tmp_dir=tmpdir)


class _NodeTrees:
    """Tree objects from the node's cache (re-hashed) or fetched, parsed once.

    The cache keeps the trees of each image in one bundle file, ``cache/trees/images/<root hex>``
    (a full hydrate writes one file, not one per directory); trees fetched loose (level by level,
    when there is no pack) are also kept as ``cache/trees/<2>/<62>`` files. Either way a tree is
    re-hashed before use, so a damaged cache costs a failed hydrate (and the damaged file), never
    a wrong image.
    """

    def __init__(self, node: NodeRoot, fetcher: _Fetcher, bundled: dict[str, tuple[bytes, Path]] | None = None) -> None:
        self.node = node
        self.fetcher = fetcher
        self.bundled = _load_bundles(node) if bundled is None else bundled
        self.fresh: dict[str, bytes] = {}  # fetched from a pack and verified
        self.raw: dict[str, bytes] = {}  # verified bytes of every tree parsed
        self.parsed: dict[str, list[Entry]] = {}
        self.fetched = 0
        self.fetched_bytes = 0
        self.loose = {
            "sha256:" + name.replace("/", "")
            for name in _cache_names(node.trees)
            if not name.startswith(BUNDLE_DIR + "/")
        }  # cache/trees/<2>/<62> files

    def have(self, digest: str) -> bool:
        return digest in self.fresh or digest in self.bundled or digest in self.loose

    def _count(self, digest: str, n: int) -> None:
        self.loose.add(digest)
        self.fetched += 1
        self.fetched_bytes += n

    def prefetch(self, index: PackIndex) -> None:
        """Fetch every tree of the pack this cache lacks in one go (no level-by-level round trips)."""
        missing = [e.digest for e in index.entries if e.kind == "tree" and not self.have(e.digest)]
        got = fetch_packed_bytes(self.fetcher.store, index, missing, MAX_TREE_BYTES, self.fetcher.workers)
        self.fresh.update(got)
        self.fetched += len(got)
        self.fetched_bytes += sum(len(d) for d in got.values())

    def load_all(self, root: str) -> None:
        """Make every tree below ``root`` available, one parallel fetch per directory level."""
        level, seen = [root], {root}
        while level:
            missing = [d for d in level if not self.have(d)]
            self.fetcher.fetch([(d, self.node.tree_path(d), MAX_TREE_BYTES, 0o444) for d in missing], self._count)
            nxt = []
            for d in level:
                for e in self.entries(d):
                    if e.type == "dir" and e.digest not in seen:
                        seen.add(e.digest)  # type: ignore[arg-type]
                        nxt.append(e.digest)
            level = nxt  # type: ignore[assignment]

    def save_bundle(self, root: str) -> None:
        """Keep the trees of ``root``'s image (after ``load_all``) as its bundle."""
        _write_bundle(self.node, root, self.raw, self.fetcher.run_tmp)

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
        return walk_tree(self.entries, root, prefix)


def _cache_names(base: Path) -> set[str]:
    """``cache_name`` of every entry of a fan-out cache directory: one listing per
    subdirectory, where a check per object would cost a path and a stat each (on a fresh node,
    thousands of them for nothing)."""
    names: set[str] = set()
    try:
        subs = list(os.scandir(base))
    except FileNotFoundError:
        return names
    for sub in subs:
        if sub.is_dir(follow_symlinks=False):
            names.update(f"{sub.name}/{n}" for n in os.listdir(sub.path))
    return names


def _cached_ok(path: Path, digest: str, size: int) -> bool:
    """Whether the cached object at ``path`` can be reused; a damaged one is removed.

    An object some image links to (link count > 1) was complete when that image was switched to
    (after a ``syncfs``): its size is checked. One no image links to yet is what an interrupted
    hydrate left, possibly short or, after a power loss, of the right size with other bytes: it
    is re-hashed (still cheaper than fetching it again).
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    ok = st.st_size == size
    if ok and st.st_nlink == 1:
        ok = hash_file(path)[0] == digest
    if not ok:
        path.unlink()  # truncated, damaged or foreign: fetch it again
    return ok


def _copy_into_cache(src: Path, dest: Path, mode: int, tmpdir: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=tmpdir)
    os.close(fd)
    shutil.copyfile(src, tmp)
    os.chmod(tmp, mode)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)


@dataclass
class _Plan:
    """An image as flat lists (string paths relative to the image), so building it is a tight loop."""

    dirs: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (relative path, target)
    files: list[tuple[str, str, bool, int]] = field(default_factory=list)  # (relative path, hex, exec, size)
    nbytes: int = 0


def _plan(trees: _NodeTrees, root: str) -> _Plan:
    plan = _Plan()
    for relpath, e in trees.walk(root):
        if e.type == "dir":
            plan.dirs.append(relpath)
        elif e.type == "link":
            plan.links.append((relpath, e.target))  # type: ignore[arg-type]
        else:
            plan.files.append((relpath, e.digest[7:], e.mode & 0o111 != 0, e.size))  # type: ignore[index]
            plan.nbytes += e.size
    return plan


def _make_dirs(dest: str, plan: _Plan) -> None:
    """The image's directories (writable until ``_link_files`` seals them).

    Runs while objects download: ext4 spends ~0.3 ms of kernel time per mkdir choosing an inode
    group, time that overlaps the network and decompression this way.
    """
    mkdir = os.mkdir
    for rel in plan.dirs:
        mkdir(f"{dest}/{rel}")


def _link_files(node: NodeRoot, dest: str, plan: _Plan) -> tuple[int, int]:
    """Fill the directories of ``dest``: relative symlinks, hard links to the cache; then 0555 dirs."""
    objects = str(node.objects)
    link = os.link
    for rel, target in plan.links:
        os.symlink(target, f"{dest}/{rel}")
    for rel, h, x, _ in plan.files:
        src = f"{objects}/{h[:2]}/{h[2:]}.x" if x else f"{objects}/{h[:2]}/{h[2:]}"
        try:
            link(src, f"{dest}/{rel}")
        except OSError as exc:
            if exc.errno != errno.EMLINK:
                raise
            shutil.copyfile(src, f"{dest}/{rel}")  # too many links to one inode: a private copy
            os.chmod(f"{dest}/{rel}", 0o555 if x else 0o444)
    for rel in reversed(plan.dirs):
        os.chmod(f"{dest}/{rel}", 0o555)
    os.chmod(dest, 0o555)
    return len(plan.files), plan.nbytes


def _clean_temp(node: NodeRoot) -> None:
    """Remove what killed hydrates left: downloads in flight, half-materialized images, temp links."""
    for p in node.tmp.iterdir():
        force_rmtree(p)
    for rel in node.releases.iterdir():
        if rel.is_dir():
            for p in rel.iterdir():
                if p.name.startswith(".") and ".tmp-" in p.name:
                    force_rmtree(p)
    for p in node.current_dir.iterdir():
        if p.name.startswith(".") and ".tmp-" in p.name:
            p.unlink()


# -- hydrate ---------------------------------------------------------------------------------------
def hydrate(
    store: Store,
    trust: TrustSet,
    node: NodeRoot,
    channel: str,
    *,
    release: str | None = None,
    arch: str | None = None,
    cpu: str | None = None,
    keep: int = 3,
    workers: int | None = None,
    now: datetime | None = None,
    progress: HydrateProgress | None = None,
    max_manifest_bytes: int = DEFAULT_MAX_MANIFEST_BYTES,
) -> HydrateResult:
    """Bring ``current/<channel>`` to the release of the channel's pointer (or ``release``).

    ``arch`` overrides the image choice (honoured if the release has it); ``cpu`` replaces the
    host's detected micro-architecture (tests, emulation). With ``release`` the pointer is not read
    and no high-water mark moves (a pinned, operator-chosen release). Raises ``TrustError`` (4) for
    pointer or release verification failures, ``StoreError``/``CorruptObject`` (1) for fetch
    failures, ``CheckFailed`` (1) when no image fits; ``current`` is untouched in every such case.
    """
    check_channel_name(channel)
    workers = workers or default_workers()
    with _no_gc():
        return _hydrate(
            store,
            trust,
            node,
            channel,
            release=release,
            arch=arch,
            cpu=cpu,
            keep=keep,
            workers=workers,
            now=now,
            progress=progress,
            max_manifest_bytes=max_manifest_bytes,
        )


@contextlib.contextmanager
def _no_gc():
    """Pause the cyclic garbage collector: parsing ~1000 trees allocates ~100k objects that live
    until the end, and repeated full collections over them cost more than the hydrate's Python
    work (reference counting still frees everything that is not in a cycle)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _hydrate(
    store: Store,
    trust: TrustSet,
    node: NodeRoot,
    channel: str,
    *,
    release: str | None,
    arch: str | None,
    cpu: str | None,
    keep: int,
    workers: int,
    now: datetime | None,
    progress: HydrateProgress | None,
    max_manifest_bytes: int,
) -> HydrateResult:
    from core.clock import system_clock
    from core.trust.pointers import verify_pointer

    prog = progress or HydrateProgress()
    t0 = time.perf_counter()
    node.ensure()
    with node.lock():
        _clean_temp(node)
        ptr = None
        if release is None:
            data = store.read_file(channel_path(channel))
            if data is None:
                raise NotFound(f"channel {channel} has no pointer in store {store.location}")
            mark_v, mark_d = node.mark(channel)
            ptr = verify_pointer(data, channel, trust, mark_v, mark_d, now or system_clock())
            release_id = ptr.release
        else:
            release_id = resolve_store_release(store, release)
        envelope = store.read_file(release_path(release_id))
        if envelope is None:
            raise NotFound(f"release {release_id} not found in store {store.location}")
        rel = release_from_envelope(envelope, trust, release_id, max_manifest_bytes)

        cpu_name = cpu or host_microarch()
        choice = choose_image(cpu_name, rel.images, arch)
        if choice.image is None:
            raise CheckFailed(f"no image of release {release_id[7:19]} fits this node: {choice.reason}")
        image = rel.images[choice.image]
        before = node.current(channel)
        result = HydrateResult(
            channel=channel,
            release=release_id,
            image=choice.image,
            cpu=cpu_name,
            reason=choice.reason,
            version=ptr.version if ptr else None,
            path=str(node.image_dir(release_id, choice.image)),
            previous=before.release if before else None,
            files=image.files,
            bytes=image.bytes,
        )
        bytes_in_before = getattr(store, "stats", {}).get("object_bytes_in")

        rel_dir = node.release_dir(release_id)
        rel_dir.mkdir(parents=True, exist_ok=True)
        if not (rel_dir / "release.json").is_file():
            atomic_write(rel_dir / "release.json", envelope, 0o444)
        image_dir = node.image_dir(release_id, choice.image)
        if not image_dir.is_dir():
            bundled = _load_bundles(node)
            pack = _usable_pack(store, node, release_id, choice.image, bundled)
            _fetch_and_materialize(store, node, image.root, image_dir, workers, prog, result, pack, bundled)
            result.materialized = True
        else:
            result.reused_objects, result.reused_bytes = image.files, image.bytes
        if bytes_in_before is not None:
            result.transferred_bytes = store.stats["object_bytes_in"] - bytes_in_before  # type: ignore[attr-defined]

        prog.phase("switch")
        syncfs(node.root)
        if before is None or (before.release, before.arch) != (release_id, choice.image):
            node.switch(channel, release_id, choice.image)
            result.switched = True
        _record(node, channel, release_id, choice.image, image.root, ptr, now or system_clock())
        result.pruned = prune(node, keep, locked=True)
    result.seconds = round(time.perf_counter() - t0, 3)
    return result


def _usable_pack(
    store: Store, node: NodeRoot, release_id: str, arch: str, bundled: dict[str, tuple[bytes, Path]]
) -> PackIndex | None:
    """The image's pack index, if the store has one and at least ``PACK_MIN_MISSING`` of its entries
    are missing here (for a handful of objects, a few parallel GETs cost no more than ranges)."""
    index = load_pack_index(store, release_id, arch)
    if index is None:
        return None
    objects, trees = _cache_names(node.objects), _cache_names(node.trees)
    missing = 0
    for e in index.entries:
        if e.kind == "tree":
            here = e.digest in bundled or cache_name(e.digest) in trees
        else:
            here = cache_name(e.digest) in objects or cache_name(e.digest, True) in objects
        missing += not here
        if missing >= PACK_MIN_MISSING:
            return index
    return None


def _fetch_and_materialize(
    store: Store,
    node: NodeRoot,
    root: str,
    image_dir: Path,
    workers: int,
    prog: HydrateProgress,
    result: HydrateResult,
    pack: PackIndex | None = None,
    bundled: dict[str, tuple[bytes, Path]] | None = None,
) -> None:
    fetcher = _Fetcher(store, node, workers)
    try:
        prog.phase("trees")
        trees = _NodeTrees(node, fetcher, bundled)
        try:
            if pack is not None:
                trees.prefetch(pack)
            trees.load_all(root)
        except NotFound as exc:
            raise StoreError(f"store {store.location} is incomplete: {exc}") from None
        trees.save_bundle(root)
        result.fetched_trees, result.tree_bytes = trees.fetched, trees.fetched_bytes

        plan = _plan(trees, root)
        needed: dict[str, tuple[int, set[bool]]] = {}
        for _, h, x, size in plan.files:
            _, modes = needed.setdefault("sha256:" + h, (size, set()))
            modes.add(x)
        jobs: list[tuple[str, Path, int | None, int]] = []
        copies: list[tuple[Path, Path, int]] = []
        cached = _cache_names(node.objects)
        for digest, (size, modes) in needed.items():
            present = [
                x
                for x in (False, True)
                if cache_name(digest, x) in cached and _cached_ok(node.object_path(digest, x), digest, size)
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
        prog.start_objects(len(jobs), result.fetched_bytes)
        prog.phase(f"objects: {len(jobs)} to fetch, {result.reused_objects} reused")
        # The image's directories are made while the objects download (see _make_dirs).
        tmp = tempfile.mkdtemp(prefix=f".{image_dir.name}.tmp-", dir=image_dir.parent)
        try:
            with ThreadPoolExecutor(max_workers=1) as side:
                skeleton = side.submit(_make_dirs, tmp, plan)
                try:
                    fetcher.fetch_all(pack, jobs, prog.object_done)
                except NotFound as exc:
                    raise StoreError(f"store {store.location} is incomplete: {exc}") from None
                finally:
                    skeleton_error = skeleton.exception()
            if skeleton_error is not None:
                raise skeleton_error
            for src, dest, mode in copies:
                _copy_into_cache(src, dest, mode, fetcher.run_tmp)
            prog.phase("materialize")
            _link_files(node, tmp, plan)
            os.rename(tmp, image_dir)
        except BaseException:
            force_rmtree(Path(tmp))
            raise
    finally:
        fetcher.close()


def _record(node: NodeRoot, channel: str, release_id: str, arch: str, root: str, ptr, now: datetime) -> None:
    """After the switch: raise the channel's high-water mark and append to the switch history."""
    from core.clock import format_time

    state = node.load_state()
    when = format_time(now)
    if ptr is not None:
        mark = state["marks"].get(channel)
        if mark is None or ptr.version >= mark["version"]:
            state["marks"][channel] = {
                "version": ptr.version,
                "digest": ptr.digest,
                "release": ptr.release,
                "updated": when,
            }
    last = next((h for h in reversed(state["history"]) if h.get("channel") == channel), None)
    if last is None or (last["release"], last["arch"], last.get("version")) != (
        release_id,
        arch,
        ptr.version if ptr else None,
    ):
        state["history"].append(
            {
                "time": when,
                "channel": channel,
                "release": release_id,
                "arch": arch,
                "root": root,
                "version": ptr.version if ptr else None,
                "pinned": ptr is None,
            }
        )
    node.save_state(state)


# -- prune -----------------------------------------------------------------------------------------
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


def prune(node: NodeRoot, keep: int, *, locked: bool = False) -> list[str]:
    """Remove images not kept (see ``kept_images``), then cache objects and trees nothing uses.

    A file object is unused when no image links to it (link count 1); a tree bundle when its root
    is not a kept image's; a tree file when it is not reachable from a kept image's root. Returns the removed image paths (relative to the root).
    """
    if not locked:
        with node.lock():
            return prune(node, keep, locked=True)
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
    for sub in node.objects.iterdir():
        for e in os.scandir(sub):
            st = e.stat(follow_symlinks=False)
            if st.st_nlink <= 1:
                os.unlink(e.path)
    roots = list(keep_map.values())
    loose_trees = [
        ("sha256:" + sub.name + e.name, e.path)
        for sub in os.scandir(node.trees)
        if sub.name != BUNDLE_DIR and sub.is_dir()
        for e in os.scandir(sub.path)
    ]
    if roots and all(r is not None and is_digest(r) for r in roots):
        kept_bundles = {r[7:] for r in roots if r}
        bundle_dir = node.trees / BUNDLE_DIR
        if bundle_dir.is_dir():
            for e in os.scandir(bundle_dir):
                if e.name not in kept_bundles:
                    os.unlink(e.path)
        if not loose_trees:  # a hydrate from a pack keeps every tree in its bundle: nothing to walk
            return removed
        bundled = _load_bundles(node, [r for r in roots if r])
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
        for digest, path in loose_trees:
            if digest not in reachable:
                os.unlink(path)
    return removed


def describe_failure(exc: DepotError, node: NodeRoot, channel: str) -> str:
    """One line for a failed hydrate: what failed and what ``current`` still points at."""
    try:
        cur = node.current(channel)
    except DepotError:
        cur = None
    kept = f"current/{channel} unchanged ({cur.release[7:19]} {cur.arch})" if cur else f"current/{channel} not created"
    return f"hydrate failed: {exc}; {kept}"


__all__ = [
    "hydrate",
    "prune",
    "kept_images",
    "local_release",
    "resolve_store_release",
    "HydrateResult",
    "HydrateProgress",
    "describe_failure",
]
