"""Step 2 of a publish: the store's bytes, in the order that keeps every interruption harmless.

Under the store's shared publish lock (gc takes it exclusively, so it can never delete an object
this publish decided to reuse): missing file objects, then tree objects, then the image packs and
the release's pack list (``core.store.packs``), a ``sync``, then the release envelope, then
``index.json`` by compare-and-swap, and a last ``sync``. Killed anywhere in here, the store holds
only complete, unreferenced objects (and perhaps ``.tmp-*`` files), which a rerun reuses and
``gc`` removes.

In a packed store (``core.store.locator``) the trees and the small file objects are encoded but
not written loose: their frames go straight into the image packs, which are then their only copy
(objects of earlier releases are read from those releases' packs). That is what makes a depot of
tens of thousands of tiny files cost a few pack files instead of an inode each.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable

import zstandard

from core.errors import BadInput, NotFound
from core.model.digest import PREFIX
from core.site.catalogue import update_index
from core.site.publish.hashing import KEEP_MAX_FILE, read_small
from core.site.publish.plan import Plan
from core.site.publish.pool import batches, parallel_map
from core.site.publish.result import Progress
from core.site.site import Site
from core.store.base import Store, release_path
from core.store.packs import PACK_MAX_OBJECT, existing_packs, write_release_packs
from core.trust.signing import RELEASE_TYPE, make_envelope

#: How many earlier releases of the same name publish looks through for packs it can reuse.
PACK_REUSE_LOOKBACK = 5
#: Most compressed bytes of just-written objects kept in memory for the packs (past it, the
#: packs read them back from the store, as for objects that were already there).
FRAME_BUDGET = 256 << 20


class _Frames(dict[str, bytes]):
    """digest -> the stored bytes of an object this publish wrote (what its packs copy)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def keep(self, digest: str, frame: bytes) -> None:
        if self.total + len(frame) <= FRAME_BUDGET:
            self[digest] = frame
            self.total += len(frame)


def write(site: Site, planned: Plan, progress: Progress | None = None) -> None:
    """Objects, trees, packs, then the release, then the index: all under the publish lock."""
    store = site.store
    result = planned.result
    frames = _Frames()
    with store.publish_lock():
        write_objects(store, planned, progress, frames)
        write_trees(store, planned, frames)
        if not result.already_published:  # packs (derived, for fast HTTP hydrate), then their list
            write_packs(site, planned, frames)
        frames.clear()
        envelope = make_envelope(RELEASE_TYPE, planned.payload, [planned.signing_key])
        store.sync()  # objects, trees and packs are durable before the release that names them
        if not result.already_published:
            store.write_file(release_path(planned.release_id), envelope)
        update_index(site)
        store.sync()


def _small_content(path: str, size: int, digest: str) -> bytes:
    """A small file read again (its bytes were not kept), checked to be what was hashed."""
    try:
        data = read_small(path, size)
    except PermissionError:
        raise BadInput(f"{path}: cannot read file (permission denied)") from None
    except FileNotFoundError:
        raise BadInput(f"{path}: file changed while publishing") from None
    if len(data) != size or PREFIX + hashlib.sha256(data).hexdigest() != digest:
        raise BadInput(f"{path}: file changed while publishing")
    return data


def write_objects(store: Store, planned: Plan, progress: Progress | None = None, frames: _Frames | None = None) -> None:
    """Every file object the store lacks, largest first (decided under the lock: see the module).

    Small objects go to the pool in batches; with a store that takes encoded frames (LocalStore),
    each is compressed from the bytes hashed in the plan step (or read again and checked) and
    its frame is kept for the packs, so it is neither reopened nor read back."""
    by_digest, result, contents = planned.by_digest, planned.result, planned.contents
    missing = _missing(store, by_digest, lambda d: by_digest[d][1])
    result.reused_objects = len(by_digest) - len(missing)
    result.reused_bytes = sum(s for d, (_, s) in by_digest.items() if d not in missing)
    lock = threading.Lock()
    done = [0, 0]
    todo = sorted(missing, key=lambda d: -by_digest[d][1])
    encode = getattr(store, "encode_object", None)
    put_frames = getattr(store, "put_object_frames", None)
    frames = frames if frames is not None else _Frames()

    def put_large(d: str, path: str) -> int:
        try:
            return store.put_object_file(d, path)
        except PermissionError:
            raise BadInput(f"{path}: cannot read file (permission denied)") from None
        except zstandard.ZstdError:  # the frame header's size no longer matches the file
            raise BadInput(f"{path}: file changed while publishing") from None

    def put_batch(batch: list[str]) -> int:
        stored = 0
        nbytes = 0
        encoded: list[tuple[str, bytes]] = []
        for d in batch:
            path, size = by_digest[d]
            nbytes += size
            if size > KEEP_MAX_FILE:
                stored += put_large(d, path)
                continue
            data = contents.get(d)
            if data is None:
                data = _small_content(path, size, d)
            if encode is None or (put_frames is None and not (store.packed and size <= PACK_MAX_OBJECT)):
                stored += store.put_object(d, data)
            else:
                encoded.append((d, encode(data)))
        if encoded and store.packed:  # into the packs only (write_packs)
            packed = [(d, f) for d, f in encoded if by_digest[d][1] <= PACK_MAX_OBJECT]
            stored += _keep_packed(packed, frames)
            encoded = [(d, f) for d, f in encoded if by_digest[d][1] > PACK_MAX_OBJECT]
        if encoded:
            assert put_frames is not None
            for (d, frame), n in zip(encoded, put_frames(encoded)):
                stored += n
                if n and by_digest[d][1] <= PACK_MAX_OBJECT:  # 0: someone else's bytes are there
                    frames.keep(d, frame)
        with lock:
            done[0] += len(batch)
            done[1] += nbytes
            if progress:
                progress("write", done[0], len(todo), done[1])
        return stored

    work = list(batches(todo, lambda d: by_digest[d][1]))
    result.stored_bytes = sum(parallel_map(put_batch, work, planned.workers))
    result.new_objects = len(todo)
    result.new_bytes = sum(by_digest[d][1] for d in todo)


def write_trees(store: Store, planned: Plan, frames: _Frames | None = None) -> None:
    """The tree objects the store lacks (after the file objects they name), in batches."""
    encode = getattr(store, "encode_object", None)
    put_frames = getattr(store, "put_object_frames", None)
    frames = frames if frames is not None else _Frames()

    missing = _missing(store, planned.tree_objects, lambda d: 0)

    def put_batch(batch: list[tuple[str, bytes]]) -> int:
        todo = [(d, data) for d, data in batch if d in missing]
        if store.packed and encode is not None:  # into the packs only (write_packs)
            return _keep_packed([(d, encode(data)) for d, data in todo], frames)
        if encode is None or put_frames is None:
            return sum(store.put_object(d, data) for d, data in todo)
        encoded = [(d, encode(data)) for d, data in todo]
        stored = 0
        for (d, frame), n in zip(encoded, put_frames(encoded) if encoded else []):
            stored += n
            if n:
                frames.keep(d, frame)
        return stored

    work = list(batches([(d, t) for d, t in planned.tree_objects.items() if d in missing], lambda item: len(item[1])))
    planned.result.stored_bytes += sum(parallel_map(put_batch, work, planned.workers))


def _missing(store: Store, digests: Iterable[str], size_of: Callable[[str], int]) -> set[str]:
    """The objects the store lacks. In a packed store an object a pack will hold is looked for
    in the packs only (a loose copy there would be packed again anyway, which is harmless)."""
    if not store.packed:
        return store.missing_objects(digests)
    small = {d for d in digests if size_of(d) <= PACK_MAX_OBJECT}
    large = [d for d in digests if d not in small]
    return (store.missing_objects(large) if large else set()) | (small - store.packed_present(small))


def _keep_packed(encoded: list[tuple[str, bytes]], frames: _Frames) -> int:
    """Frames of a packed store's new small objects, kept for their packs; their stored bytes.
    Past ``FRAME_BUDGET`` they are dropped here and encoded again for the pack (``_loader``)."""
    for d, frame in encoded:
        frames.keep(d, frame)
    return sum(len(f) for _, f in encoded)


def _loader(store: Store, planned: Plan) -> Callable[[str], bytes]:
    """The stored bytes of an object for a pack: from the store (loose, or an earlier release's
    pack), else (a packed store's new object whose frame was not kept) encoded again from the
    tree built or the file read again and checked."""
    encode = getattr(store, "encode_object", None)

    def load(digest: str) -> bytes:
        try:
            return store.read_object_raw(digest)
        except NotFound:
            if encode is None:
                raise
        tree = planned.tree_objects.get(digest)
        if tree is not None:
            return encode(tree)
        path, size = planned.by_digest[digest]
        data = planned.contents.get(digest)
        return encode(data if data is not None else _small_content(path, size, digest))

    return load


def write_packs(site: Site, planned: Plan, frames: dict[str, bytes] | None = None) -> None:
    """The images' packs and the release's pack list, reusing packs of recent same-name releases."""
    roots = {a: m.root for a, m in planned.image_meta.items()}
    earlier = [r["id"] for r in site.state.release_rows(name=planned.name, limit=PACK_REUSE_LOOKBACK)]
    reuse = existing_packs(site.store, earlier, set(roots.values()))
    planned.result.reused_packs = sum(root in reuse for root in roots.values())
    write_release_packs(
        site.store,
        planned.release_id,
        roots,
        planned.tree_objects,
        planned.workers,
        reuse=reuse,
        frames=frames,
        load=_loader(site.store, planned),
        parsed=planned.tree_entries,
    )
