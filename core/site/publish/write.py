"""Step 2 of a publish: the store's bytes, in the order that keeps every interruption harmless.

Under the store's shared publish lock (gc takes it exclusively, so it can never delete an object
this publish decided to reuse): missing file objects, then tree objects, then the image packs and
the release's pack list (``core.store.packs``), a ``sync``, then the release envelope, then
``index.json`` by compare-and-swap, and a last ``sync``. Killed anywhere in here, the store holds
only complete, unreferenced objects (and perhaps ``.tmp-*`` files), which a rerun reuses and
``gc`` removes.
"""

from __future__ import annotations

import threading

import zstandard

from core.errors import BadInput
from core.site.catalogue import update_index
from core.site.publish.plan import Plan
from core.site.publish.pool import parallel_map
from core.site.publish.result import Progress
from core.site.site import Site
from core.store.base import Store, release_path
from core.store.packs import existing_packs, write_release_packs
from core.trust.signing import RELEASE_TYPE, make_envelope

#: How many earlier releases of the same name publish looks through for packs it can reuse.
PACK_REUSE_LOOKBACK = 5


def write(site: Site, planned: Plan, progress: Progress | None = None) -> None:
    """Objects, trees, packs, then the release, then the index: all under the publish lock."""
    store = site.store
    result = planned.result
    with store.publish_lock():
        write_objects(store, planned, progress)
        write_trees(store, planned)
        if not result.already_published:  # packs (derived, for fast HTTP hydrate), then their list
            write_packs(site, planned)
        envelope = make_envelope(RELEASE_TYPE, planned.payload, [planned.signing_key])
        store.sync()  # objects, trees and packs are durable before the release that names them
        if not result.already_published:
            store.write_file(release_path(planned.release_id), envelope)
        update_index(site)
        store.sync()


def write_objects(store: Store, planned: Plan, progress: Progress | None = None) -> None:
    """Every file object the store lacks, largest first (decided under the lock: see the module)."""
    by_digest, result = planned.by_digest, planned.result
    missing = store.missing_objects(by_digest)
    result.reused_objects = len(by_digest) - len(missing)
    result.reused_bytes = sum(s for d, (_, s) in by_digest.items() if d not in missing)
    lock = threading.Lock()
    done = [0, 0]
    todo = sorted(missing, key=lambda d: -by_digest[d][1])

    def put(d: str) -> int:
        path, size = by_digest[d]
        try:
            stored = store.put_object_file(d, path)
        except PermissionError:
            raise BadInput(f"{path}: cannot read file (permission denied)") from None
        except zstandard.ZstdError:  # the frame header's size no longer matches the file
            raise BadInput(f"{path}: file changed while publishing") from None
        with lock:
            done[0] += 1
            done[1] += size
            if progress:
                progress("write", done[0], len(todo), done[1])
        return stored

    result.stored_bytes = sum(parallel_map(put, todo, planned.workers))
    result.new_objects = len(todo)
    result.new_bytes = sum(by_digest[d][1] for d in todo)


def write_trees(store: Store, planned: Plan) -> None:
    """The tree objects the store lacks (after the file objects they name)."""
    for d, data in planned.tree_objects.items():
        if not store.has_object(d):
            planned.result.stored_bytes += store.put_object(d, data)


def write_packs(site: Site, planned: Plan) -> None:
    """The images' packs and the release's pack list, reusing packs of recent same-name releases."""
    roots = {a: m.root for a, m in planned.image_meta.items()}
    earlier = [r["id"] for r in site.state.release_rows(name=planned.name, limit=PACK_REUSE_LOOKBACK)]
    reuse = existing_packs(site.store, earlier, set(roots.values()))
    planned.result.reused_packs = sum(root in reuse for root in roots.values())
    write_release_packs(site.store, planned.release_id, roots, planned.tree_objects, planned.workers, reuse=reuse)
