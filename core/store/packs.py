"""Object packs: an acceleration layer that lets an HTTP node fetch many small objects with few requests.

Loose objects stay the truth (DESIGN §2): every object is still written under ``objects/`` and
every reader that ignores packs (verify, gc marking, export, diff, older nodes) keeps working.
Packs are extra, derived files::

    packs/<hex>.pack              concatenated zstd frames: exactly the loose objects' stored bytes
    packs/<hex>.idx               canonical JSON {"schema", "pack", "size", "entries": [[digest, offset,
                                  length, "tree"|"file"], …]} sorted by offset; <hex> = sha256(pack bytes)
    packs/lists/<hex>.json        {"schema", "release", "images": {arch: [pack id, …]}}: a release's packs
                                  (<hex> = the release id; kept out of releases/, which holds envelopes only)

Publish writes, per image, the image's tree objects (breadth-first from the root) followed by its
file objects smaller than ``PACK_MAX_OBJECT`` (in path order, so one package's files sit together),
objects that already existed in the store included: a node can hydrate a whole image from its
pack. Write order is objects, trees, packs (pack then idx), pack list, release, index, so any visible
release already has its packs. Large objects stay loose fetches only (storing them twice per release
would double the store for nothing: they are few and already one request per many kilobytes).

Trust: the pack list and indexes are **unsigned**, and need not be. Every entry fetched from a pack
is decompressed with its promised size as a bound and re-hashed exactly like a loose object, so a
lying index can only cause a ``CorruptObject`` (the hydrate fails, ``current`` untouched) or a
fallback to loose objects, never wrong bytes. The node only asks the pack for objects its verified
trees reach (trees: the ones its cache lacks), and never decompresses an entry they do not name:
an index listing extra "tree" entries (valid frames that inflate to hundreds of MiB) costs the
node nothing but their index lines. What a node holds is bounded by signed sizes: an index is
used only while its entries (over all of an image's packs) stay within ``max_index_entries`` of
the image's signed file count, else the node fetches loose objects; the compressed tree frames
read in one go are bounded by ``tree_frame_budget`` of that count (past it, trees come from the
pack level by level, only those reached); each frame by ``compressed_bound`` of its limit.

Node side: entries the node lacks are grouped into byte ranges. Adjacent entries always merge; a gap
between two needed entries merges only if it is at most ``MAX_GAP`` and the total of merged gaps stays
within ``GAP_FRACTION`` of the needed bytes, smallest gaps first: an incremental hydrate transfers at
most 5% more than it needs, while a full hydrate reads the pack in a few large spans. Spans are cut
into about ``workers`` pieces (at least ``MIN_SPAN``, at most ``MAX_SPAN``) that are fetched in
parallel, one plain ``Range: bytes=a-b`` request each (no multipart parsing). A LocalStore "range" is
a seek and a read.

gc deletes pack lists whose release is gone and pack files no pack list names (a pack of a live
release only holds objects that release references, so no other condition is needed).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core.errors import BadInput, CorruptObject, DepotError
from core.model.digest import canonical_json, digest_bytes, hex_of, is_digest
from core.model.manifest import Entry, parse_tree
from core.store.base import Store
from core.store.codec import compressed_bound, decode_verified
from core.store.locator import LOOKUP_SUFFIX, encode_lookup, lookup_path


class RangeSource(Protocol):
    """What pack reads need of a store (``Store.read_range``)."""

    def read_range(self, relpath: str, offset: int, length: int) -> bytes: ...


PACK_LIST_SCHEMA = "depot-packs/1"
PACK_INDEX_SCHEMA = "depot-pack-index/1"
#: File objects at most this large (uncompressed) go into packs; larger ones stay loose fetches.
PACK_MAX_OBJECT = 256 << 10
#: A pack is closed and a new one started past this many bytes (HTTP metadata reads cap at 64 MiB).
PACK_MAX_BYTES = 32 << 20
#: Below this many missing entries a node fetches loose objects: a few parallel GETs cost no more.
PACK_MIN_MISSING = 64
MAX_GAP = 64 << 10
GAP_FRACTION = 0.05
MIN_SPAN = 256 << 10
MAX_SPAN = 4 << 20
#: Bound on an index's entries (an honest one has one per small object of one image).
MAX_INDEX_ENTRIES = 1 << 20

Job = tuple[str, Path, "int | None", int]  # (digest, final path, promised size, mode), as in hydrate


def pack_list_path(release_id: str) -> str:
    """``packs/lists/<hex>.json``: the packs of one release, per image."""
    return f"packs/lists/{hex_of(release_id)}.json"


def pack_path(pack_id: str) -> str:
    return f"packs/{hex_of(pack_id)}.pack"


def pack_index_path(pack_id: str) -> str:
    return f"packs/{hex_of(pack_id)}.idx"


@dataclass(frozen=True)
class PackEntry:
    """One object in a pack: its digest, where its zstd frame starts, how long it is, its kind."""

    digest: str
    offset: int
    length: int
    kind: str  # "tree" or "file"
    pack: str = ""

    @property
    def end(self) -> int:
        return self.offset + self.length


# -- publish side ----------------------------------------------------------------------------------
def image_objects(
    root: str,
    tree_objects: dict[str, bytes],
    max_object: int = PACK_MAX_OBJECT,
    parsed: dict[str, list[Entry]] | None = None,
) -> tuple[list[str], list[str]]:
    """(trees breadth-first from ``root``, small file digests in path order), each digest once.
    ``parsed``: trees' entries already known (publish built them), else each tree is parsed once."""
    trees: list[str] = []
    files: list[str] = []
    seen_trees, seen_files = {root}, set()
    parsed = dict(parsed or {})  # each tree parsed once, reused by walk()
    level = [root]
    while level:
        trees.extend(level)
        nxt = []
        for d in level:
            if d not in parsed:
                parsed[d] = parse_tree(tree_objects[d], d)
            for e in parsed[d]:
                if e.type == "dir" and e.digest not in seen_trees:
                    seen_trees.add(e.digest)  # type: ignore[arg-type]
                    nxt.append(e.digest)
        level = nxt  # type: ignore[assignment]

    def walk(d: str) -> None:
        for e in parsed[d]:
            if e.type == "file" and e.size <= max_object and e.digest not in seen_files:
                seen_files.add(e.digest)
                files.append(e.digest)  # type: ignore[arg-type]
            elif e.type == "dir":
                walk(e.digest)  # type: ignore[arg-type]

    walk(root)
    return trees, files


def _write_pack(store: Store, chunks: list[bytes], entries: list[list[object]]) -> str:
    """The pack, its JSON index (for nodes) and, in a packed store, its lookup file, in that order."""
    data = b"".join(chunks)
    pack_id = digest_bytes(data)
    index = {"schema": PACK_INDEX_SCHEMA, "pack": pack_id, "size": len(data), "entries": entries}
    store.write_file(pack_path(pack_id), data)
    store.write_file(pack_index_path(pack_id), canonical_json(index) + b"\n")
    if store.packed:
        store.write_file(lookup_path(pack_id), encode_lookup((e[0], e[1], e[2]) for e in entries))  # type: ignore[misc]
    return pack_id


def write_image_packs(
    store: Store,
    root: str,
    tree_objects: dict[str, bytes],
    workers: int = 4,
    frames: dict[str, bytes] | None = None,
    load: Callable[[str], bytes] | None = None,
    parsed: dict[str, list[Entry]] | None = None,
) -> list[str]:
    """Write the pack(s) of one image (trees, then small files); return their ids.

    ``frames`` holds the stored bytes of objects this publish has just encoded (digest -> frame,
    exactly what a loose object holds): those are not read back. The others come from ``load``
    (default: ``store.read_object_raw``). ``parsed``: as for ``image_objects``."""
    trees, files = image_objects(root, tree_objects, parsed=parsed)
    kinds = [(d, "tree") for d in trees] + [(d, "file") for d in files]
    frames = frames or {}
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        unread = [d for d, _ in kinds if d not in frames]
        read = dict(zip(unread, pool.map(load or store.read_object_raw, unread)))
        raws = (frames.get(d) or read[d] for d, _ in kinds)
        pack_ids: list[str] = []
        chunks: list[bytes] = []
        entries: list[list[object]] = []
        offset = 0
        for (digest, kind), raw in zip(kinds, raws):
            if offset and offset + len(raw) > PACK_MAX_BYTES:
                pack_ids.append(_write_pack(store, chunks, entries))
                chunks, entries, offset = [], [], 0
            chunks.append(raw)
            entries.append([digest, offset, len(raw), kind])
            offset += len(raw)
        if entries:
            pack_ids.append(_write_pack(store, chunks, entries))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return pack_ids


def write_release_packs(
    store: Store,
    release_id: str,
    roots: dict[str, str],
    tree_objects: dict[str, bytes],
    workers: int = 4,
    reuse: dict[str, list[str]] | None = None,
    frames: dict[str, bytes] | None = None,
    load: Callable[[str], bytes] | None = None,
    parsed: dict[str, list[Entry]] | None = None,
) -> dict[str, list[str]]:
    """Write every image's packs, then the release's pack list; return ``{arch: [pack id, …]}``.

    Called by publish after objects and trees are in the store and before the release envelope.
    ``reuse`` maps an image's tree root to packs already in the store for that root
    (``existing_packs``): a pack's bytes follow from its root alone, so they are not built again.
    ``frames``, ``load``: where the objects' stored bytes come from; ``parsed``: the trees' entries
    (``write_image_packs``).
    """
    reuse = reuse or {}
    images = {
        arch: reuse.get(root) or write_image_packs(store, root, tree_objects, workers, frames, load, parsed)
        for arch, root in sorted(roots.items())
    }
    doc = {"schema": PACK_LIST_SCHEMA, "release": release_id, "images": images}
    store.write_file(pack_list_path(release_id), canonical_json(doc) + b"\n")
    return images


def existing_packs(store: Store, release_ids: Iterable[str], roots: set[str]) -> dict[str, list[str]]:
    """Tree root -> pack ids of an image with that root in one of ``release_ids`` (tried in order),
    for the roots in ``roots``, if that release's pack list and every listed pack are still in the
    store. An unchanged re-publish then writes no pack (the packs were ~60% of its time).

    The manifests read here are this site's own store's; nothing read is trusted further than
    packs ever are (nodes re-hash every entry).
    """
    from core.model.manifest import parse_payload
    from core.store.base import release_path
    from core.trust.signing import parse_envelope

    found: dict[str, list[str]] = {}
    present: set[str] | None = None  # names in packs/, listed once if a candidate turns up
    for rid in release_ids:
        if roots <= found.keys():
            break
        try:
            env = store.read_file(release_path(rid))
            doc = store.read_file(pack_list_path(rid))
            if env is None or doc is None:
                continue
            rel = parse_payload(parse_envelope(env, rid).payload, rid, [])
            listed = json.loads(doc).get("images") or {}
        except (DepotError, ValueError, AttributeError):
            continue
        for arch, image in rel.images.items():
            ids = listed.get(arch)
            if (
                image.root not in roots
                or image.root in found
                or not isinstance(ids, list)
                or not ids
                or not all(is_digest(i) for i in ids)
            ):
                continue
            if present is None:
                present = set(store.list_files("packs"))
            exts = (".pack", ".idx", LOOKUP_SUFFIX) if store.packed else (".pack", ".idx")
            if all(i[7:] + ext in present for i in ids for ext in exts):
                found[image.root] = ids
    return found


# -- reading indexes -------------------------------------------------------------------------------
class PackIndex:
    """Where the objects of one image sit in its packs (from the unsigned pack list and indexes).

    ``sizes``: each pack's size as its index states it. ``whole``: packs to read with one plain
    GET each (``choose_whole_packs``) into ``spool`` (a directory), their entries then read from
    that file; the others are read by ranges."""

    def __init__(self, entries: list[PackEntry], sizes: dict[str, int] | None = None) -> None:
        self.by_digest: dict[str, PackEntry] = {}
        for e in entries:
            self.by_digest.setdefault(e.digest, e)
        self.sizes = dict(sizes or {})
        self.whole: set[str] = set()
        self.spool: Path | None = None
        self._spooled: dict[str, Path | BaseException] = {}
        self._spool_lock = threading.Lock()

    def restrict(self, packs: set[str]) -> None:
        """Keep only the entries of ``packs`` (the others' objects are then fetched loose)."""
        self.by_digest = {d: e for d, e in self.by_digest.items() if e.pack in packs}

    def read(self, store: RangeSource, pack_id: str, offset: int, length: int) -> bytes:
        """Bytes ``offset``..``offset+length`` of a pack: from its spooled copy if it is read whole
        (fetched on first use, once, its sha256 checked against its name), else one range read."""
        if pack_id not in self.whole or self.spool is None:
            return store.read_range(pack_path(pack_id), offset, length)
        with self._spool_lock:
            got = self._spooled.get(pack_id)
            if got is None:
                dest = self.spool / f"pack-{hex_of(pack_id)}"
                try:
                    store.fetch_file_to(pack_path(pack_id), str(dest), self.sizes[pack_id], hex_of(pack_id))  # type: ignore[attr-defined]
                    got = dest
                except DepotError as exc:
                    got = exc
                self._spooled[pack_id] = got
        if isinstance(got, BaseException):
            raise got
        with open(got, "rb") as f:
            data = os.pread(f.fileno(), length, offset)
        if len(data) != length:
            raise BadInput(f"pack {pack_id[7:19]}: {length} bytes at {offset} are past its end")
        return data

    def drop_spool(self) -> None:
        for got in self._spooled.values():
            if isinstance(got, Path):
                with contextlib.suppress(OSError):
                    got.unlink()
        self._spooled.clear()

    @property
    def entries(self) -> Iterable[PackEntry]:
        return self.by_digest.values()

    def __len__(self) -> int:
        return len(self.by_digest)


def _parse_index(data: bytes, pack_id: str, max_entries: int = MAX_INDEX_ENTRIES) -> tuple[list[PackEntry], int] | None:
    """(the entries of one index, the pack's size) (``BadInput`` if malformed), or None if it
    lists more than ``max_entries``."""
    where = f"pack index {pack_id[7:19]}"
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise BadInput(f"{where}: not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("schema") != PACK_INDEX_SCHEMA or doc.get("pack") != pack_id:
        raise BadInput(f"{where}: not an index of this pack")
    size, raw = doc.get("size"), doc.get("entries")
    if not isinstance(size, int) or not isinstance(raw, list):
        raise BadInput(f"{where}: malformed")
    if len(raw) > max_entries:
        return None
    out = []
    for item in raw:
        if not (
            isinstance(item, list)
            and len(item) == 4
            and is_digest(item[0])
            and item[3] in ("tree", "file")
            and all(isinstance(x, int) and not isinstance(x, bool) for x in item[1:3])
            and 0 <= item[1]
            and 0 < item[2]
            and item[1] + item[2] <= size
        ):
            raise BadInput(f"{where}: malformed entry {item!r:.80}")
        out.append(PackEntry(item[0], item[1], item[2], item[3], pack_id))
    return out, size


def max_index_entries(files: int) -> int:
    """Most entries a node accepts in the indexes of an image of ``files`` (signed) files.

    An honest index has one entry per distinct tree and per distinct small file: at most about
    twice the file count (directories are fewer than files, except in images made of empty
    directories, which then hydrate from loose objects). Beyond this bound an index is ignored.
    """
    return min(MAX_INDEX_ENTRIES, 2 * max(0, files) + 4096)


#: Longest JSON text of one honest index entry (``["sha256:<64>",<offset>,<length>,"file"],``).
INDEX_ENTRY_BYTES = 128


def tree_frame_budget(files: int) -> int:
    """Most compressed tree bytes a node reads from a pack before it knows which trees it needs
    (an image of ``files`` signed files; honest trees take ~50 compressed bytes per file)."""
    return (1 << 20) + 512 * max(0, files)


def load_pack_index(store: Store, release_id: str, arch: str, max_entries: int = MAX_INDEX_ENTRIES) -> PackIndex | None:
    """The pack index of one image, or None when the store has no (usable) packs for it.

    Packs are an optimization: a missing or malformed pack list or index, or indexes listing
    more than ``max_entries`` entries in all (``max_index_entries`` of the signed file count),
    mean "use loose objects", never a failed hydrate. An index file is checked against that
    bound by its length before it is parsed, so a huge one is never turned into objects.
    """
    try:
        data = store.read_file(pack_list_path(release_id))
        if data is None or len(data) > (64 << 10) + 80 * max_entries:
            return None
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("schema") != PACK_LIST_SCHEMA or doc.get("release") != release_id:
            return None
        ids = (doc.get("images") or {}).get(arch)
        if not isinstance(ids, list) or not ids or not all(is_digest(i) for i in ids) or len(ids) > max_entries:
            return None
        entries: list[PackEntry] = []
        sizes: dict[str, int] = {}
        for pack_id in dict.fromkeys(ids):  # a pack named twice is read once
            raw = store.read_file(pack_index_path(pack_id))
            left = max_entries - len(entries)
            if raw is None or len(raw) > 4096 + INDEX_ENTRY_BYTES * left:
                return None
            parsed = _parse_index(raw, pack_id, left)
            if parsed is None:
                return None
            entries.extend(parsed[0])
            sizes[pack_id] = parsed[1]
        return PackIndex(entries, sizes)
    except (DepotError, ValueError, AttributeError):
        return None


# -- how to read: whole packs or ranges ------------------------------------------------------------
#: Through a cache, a pack whose missing entries make at least this share of its bytes is fetched
#: whole (one GET a cache keeps); below it, its objects are fetched loose (each a GET a cache
#: keeps). A range answer (206) is not kept by a default Squid, so every node would cost the
#: origin its ranges again.
WHOLE_PACK_FRACTION = 0.5


def choose_whole_packs(
    index: PackIndex, missing: Iterable[str], behind_cache: bool, packed: bool = False
) -> PackIndex | None:
    """Decide how the packs of ``index`` are read, given the digests the node lacks.

    Direct to the origin (``behind_cache`` false): byte ranges, as planned by ``plan_spans``
    (the index is returned unchanged). Through a cache: packs of which the node lacks at least
    ``WHOLE_PACK_FRACTION`` of the bytes are read whole; the others are dropped from the index, so
    their objects are fetched loose. None when no pack is left to read. A ``packed`` store has no
    loose copies to fall back on: there every pack the node lacks anything of is read whole.
    """
    if not behind_cache:
        return index
    need: dict[str, int] = {}
    for d in set(missing):
        e = index.by_digest.get(d)
        if e is not None:
            need[e.pack] = need.get(e.pack, 0) + e.length
    share = 0.0 if packed else WHOLE_PACK_FRACTION
    whole = {p for p, n in need.items() if index.sizes.get(p, 0) > 0 and n >= share * index.sizes[p]}
    if not whole:
        return None
    index.restrict(whole)
    index.whole = whole
    return index


# -- fetching ranges -------------------------------------------------------------------------------
@dataclass
class Span:
    """A byte range of one pack and the needed entries inside it (sorted by offset)."""

    pack: str
    start: int
    end: int
    entries: list[PackEntry]


def plan_spans(entries: Iterable[PackEntry], workers: int = 8) -> list[Span]:
    """Group needed entries into ranges (see the module doc for the gap and size rules)."""
    by_pack: dict[str, list[PackEntry]] = {}
    for e in entries:
        by_pack.setdefault(e.pack, []).append(e)
    spans: list[Span] = []
    for pack_id, items in sorted(by_pack.items()):
        items.sort(key=lambda e: e.offset)
        needed = sum(e.length for e in items)
        gaps = sorted((items[i + 1].offset - items[i].end, i) for i in range(len(items) - 1))
        budget = GAP_FRACTION * needed
        join = set()
        for gap, i in gaps:
            if gap <= 0:  # adjacent (or an index listing overlaps: merging is harmless)
                join.add(i)
            elif gap <= MAX_GAP and gap <= budget:
                budget -= gap
                join.add(i)
        groups: list[list[PackEntry]] = [[items[0]]]
        for i in range(1, len(items)):
            if i - 1 in join:
                groups[-1].append(items[i])
            else:
                groups.append([items[i]])
        total = sum(g[-1].end - g[0].offset for g in groups)
        target = min(MAX_SPAN, max(MIN_SPAN, total // max(1, workers) + 1))
        for g in groups:
            cur: list[PackEntry] = []
            for e in g:
                if cur and max(e.end, cur[-1].end) - cur[0].offset > target:
                    spans.append(Span(pack_id, cur[0].offset, max(x.end for x in cur), cur))
                    cur = []
                cur.append(e)
            spans.append(Span(pack_id, cur[0].offset, max(x.end for x in cur), cur))
    return spans


def decode_entry(entry: PackEntry, frame: bytes | memoryview, limit: int) -> bytes:
    """Decompress one pack entry (at most ``limit`` bytes) and check it hashes to its digest."""
    where = f"object {entry.digest} (pack {entry.pack[7:19]} at {entry.offset})"
    return decode_verified(frame, entry.digest, limit, where)


def _check_bound(entry: PackEntry, limit: int) -> None:
    """``CorruptObject`` if the entry's frame is longer than ``limit`` bytes can compress to."""
    if entry.length > compressed_bound(limit):
        raise CorruptObject(
            f"object {entry.digest}: pack {entry.pack[7:19]} lists {entry.length} bytes, "
            f"more than {limit} promised bytes can take"
        )


def _wanted(index: PackIndex, digests: Iterable[str], limit: int) -> list[PackEntry]:
    """The entries of ``digests`` that the packs hold (each once), each within ``limit``."""
    wanted = [index.by_digest[d] for d in dict.fromkeys(digests) if d in index.by_digest]
    for entry in wanted:
        _check_bound(entry, limit)
    return wanted


def _run_spans(one: Callable[[Span], None], spans: list[Span], workers: int) -> list[Future[None]]:
    """``one(span)`` for every span on a pool of ``workers``; the first failure cancels the spans
    not started yet. Returns the futures (the callers decide which failures to raise)."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(one, span) for span in spans]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for fut in pending:
            fut.cancel()
    return futures


def fetch_packed(
    store: RangeSource,
    index: PackIndex,
    jobs: list[Job],
    workers: int,
    on_done: Callable[[str, int], None] | None = None,
) -> list[Job]:
    """Fetch the jobs whose objects the packs hold; return the jobs left for loose fetches.

    Each object is verified, then written at its final path with its mode (``_write_new``).
    ``on_done(digest, nbytes)`` is called serialized, per object.
    The first failure cancels spans not started and is raised once running ones end.
    """
    rest: list[Job] = []
    wanted: dict[str, tuple[PackEntry, Job]] = {}
    for job in jobs:
        entry = index.by_digest.get(job[0])
        if entry is None or job[0] in wanted:
            rest.append(job)
            continue
        _check_bound(entry, job[2] if job[2] is not None else PACK_MAX_OBJECT)
        wanted[job[0]] = (entry, job)
    if not wanted:
        return rest
    lock = threading.Lock()
    made_dirs: dict[str, int] = {}  # fan-out directory -> an open descriptor of it
    chmod = _umask() & 0o555 != 0  # the umask would strip a bit of the final mode: set it explicitly

    def one(span: Span) -> None:
        data = index.read(store, span.pack, span.start, span.end - span.start)
        view = memoryview(data)
        for entry in span.entries:
            digest, dest, size, mode = wanted[entry.digest][1]
            obj = decode_entry(
                entry,
                view[entry.offset - span.start : entry.end - span.start],
                size if size is not None else PACK_MAX_OBJECT,
            )
            parent, name = os.path.split(dest)
            with lock:
                dirfd = made_dirs.get(parent)
                if dirfd is None:  # under the lock: no thread writes into it before it exists
                    os.makedirs(parent, exist_ok=True)
                    dirfd = made_dirs[parent] = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
            _write_new(obj, name, dirfd, mode, chmod)
            obj_done(digest, len(obj))

    def obj_done(digest: str, n: int) -> None:
        if on_done is not None:
            with lock:
                on_done(digest, n)

    try:
        futures = _run_spans(one, plan_spans([e for e, _ in wanted.values()], workers), workers)
    finally:
        for dirfd in made_dirs.values():
            os.close(dirfd)
    for fut in futures:
        if not fut.cancelled() and fut.exception() is not None:
            raise fut.exception()  # type: ignore[misc]
    return rest


def _umask() -> int:
    """The process umask, read without changing it (Linux ``/proc``; assume the worst otherwise)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o777


def _write_new(data: bytes, name: str, dirfd: int, mode: int, chmod: bool) -> None:
    """Create ``name`` in the directory ``dirfd`` holding ``data`` (already verified), with its
    final mode: one ``openat``, one ``write``.

    Written in place, not under a temp name: a kill mid-write leaves a short file, and a power
    loss before the hydrate's ``syncfs`` can leave one of the right size with other bytes. The
    node cache tells those apart from complete objects because no image links to them yet
    (``hydrate._cached_ok`` re-hashes such files before reuse). A failed write removes its file.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, mode, dir_fd=dirfd)
    except FileExistsError:  # a leftover the caller chose not to reuse: replace it
        os.unlink(name, dir_fd=dirfd)
        fd = os.open(name, flags, mode, dir_fd=dirfd)
    try:
        if os.write(fd, data) != len(data):  # a regular file takes a short write only on a full disk
            raise OSError(errno.ENOSPC, f"short write of {name}")
        if chmod:
            os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        os.unlink(name, dir_fd=dirfd)
        raise
    os.close(fd)


def fetch_packed_frames(
    store: RangeSource, index: PackIndex, digests: Iterable[str], limit: int, workers: int
) -> dict[str, memoryview]:
    """The compressed frames of the entries named by ``digests`` that the packs hold, **not**
    decompressed nor verified (``decode_entry`` does both, for the ones the caller turns out to
    need): what a node holds is then the frames' bytes, never what a frame could inflate to.

    Each entry must fit ``compressed_bound(limit)`` (else ``CorruptObject``); a pack that cannot
    be read leaves its entries out (the caller fetches them loose).
    """
    wanted = _wanted(index, digests, limit)
    out: dict[str, memoryview] = {}

    def one(span: Span) -> None:
        view = memoryview(index.read(store, span.pack, span.start, span.end - span.start))
        for entry in span.entries:
            out[entry.digest] = view[entry.offset - span.start : entry.end - span.start]

    if not wanted:
        return out
    futures = _run_spans(one, plan_spans(wanted, workers), workers)
    for fut in futures:
        exc = None if fut.cancelled() else fut.exception()
        if exc is not None and not isinstance(exc, DepotError):
            raise exc
    return out


def fetch_packed_bytes(
    store: RangeSource, index: PackIndex, digests: Iterable[str], limit: int, workers: int
) -> dict[str, bytes]:
    """Fetch objects the packs hold into memory (tree objects: the node keeps them in one bundle
    per image, not a file each), each decompressed within ``limit`` and verified.

    Returns what was delivered: a pack that cannot be read leaves its objects out (the caller
    fetches them loose); an entry that fails verification is a ``CorruptObject``.
    """
    wanted = _wanted(index, digests, limit)
    out: dict[str, bytes] = {}

    def one(span: Span) -> None:
        data = index.read(store, span.pack, span.start, span.end - span.start)
        view = memoryview(data)
        for entry in span.entries:
            out[entry.digest] = decode_entry(entry, view[entry.offset - span.start : entry.end - span.start], limit)

    if not wanted:
        return out
    futures = _run_spans(one, plan_spans(wanted, workers), workers)
    for fut in futures:
        exc = None if fut.cancelled() else fut.exception()
        if isinstance(exc, CorruptObject) or (exc is not None and not isinstance(exc, DepotError)):
            raise exc
    return out


# -- gc --------------------------------------------------------------------------------------------
@dataclass
class PackSweep:
    """What gc found among packs: pack files and lists kept, and orphans deleted (or to delete)."""

    packs: int = 0
    orphan_files: list[str] | None = None
    freed_bytes: int = 0


def sweep_packs(store: Store, release_ids: Iterable[str], dry_run: bool = False) -> PackSweep:
    """Delete pack lists of releases that are gone and pack files that no remaining list names
    (with a packed store's lookup files). In a packed store the packs of live releases are the
    only copy of their small objects, so an unreadable pack list of one stops gc instead."""
    live = set(release_ids)
    keep: set[str] = set()
    orphans: list[str] = []
    for name in store.list_files("packs/lists"):
        if not name.endswith(".json"):
            continue
        rid = "sha256:" + name[: -len(".json")]
        rel = f"packs/lists/{name}"
        if rid not in live:
            orphans.append(rel)
            continue
        try:
            doc = json.loads(store.read_file(rel) or b"{}")
            for ids in (doc.get("images") or {}).values():
                keep.update(i[7:] for i in ids if is_digest(i))
        except (ValueError, AttributeError, TypeError):
            if store.packed:  # there, packs hold the only copy of the release's small objects
                raise BadInput(f"gc refused: pack list {rel} of a live release is unreadable") from None
            orphans.append(rel)  # unreadable: packs are derived data, drop them
    sweep = PackSweep(orphan_files=[])
    for name in store.list_files("packs"):
        stem, _, ext = name.rpartition(".")
        if ext in ("pack", "idx", LOOKUP_SUFFIX[1:]) and stem in keep:
            sweep.packs += ext == "pack"
        else:
            orphans.append(f"packs/{name}")
    sweep.orphan_files = orphans
    for rel in orphans:
        sweep.freed_bytes += store.file_size(rel) if dry_run else store.delete_file(rel)
    return sweep


__all__ = [
    "PACK_MAX_OBJECT",
    "PACK_MIN_MISSING",
    "PackEntry",
    "PackIndex",
    "Span",
    "PackSweep",
    "image_objects",
    "write_image_packs",
    "write_release_packs",
    "existing_packs",
    "load_pack_index",
    "plan_spans",
    "choose_whole_packs",
    "RangeSource",
    "WHOLE_PACK_FRACTION",
    "decode_entry",
    "fetch_packed",
    "fetch_packed_bytes",
    "fetch_packed_frames",
    "max_index_entries",
    "tree_frame_budget",
    "sweep_packs",
    "pack_list_path",
    "pack_path",
    "pack_index_path",
]
