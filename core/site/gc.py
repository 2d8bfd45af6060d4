"""Garbage collection: delete objects that no release in the store references, and orphan packs.

Packs (``core.store.packs``) are derived files: gc removes pack lists whose release is gone and pack
files (``.pack``/``.idx``) that no remaining pack list names.

Safety against a concurrent publish: gc holds the store's exclusive lock while it marks and
sweeps, and every publish holds the shared lock from "which objects are missing?" until its
release and index are written. So an object a publish decided to reuse cannot be swept before
the release that references it exists, and a sweep never races an upload. (HTTP stores have no
lock: run gc where the publishers run, or while none runs.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from core.errors import BadInput, NotFound, TrustError
from core.site.catalogue import load_release
from core.site.site import Site
from core.store.packs import sweep_packs
from core.store.trees import TreeReader


@dataclass
class GcReport:
    releases: int = 0
    reachable: int = 0
    unreferenced: int = 0
    deleted: int = 0
    freed_bytes: int = 0
    temp_files: int = 0
    packs: int = 0
    orphan_pack_files: list[str] = field(default_factory=list)
    pack_freed_bytes: int = 0
    dry_run: bool = False

    def to_json(self) -> dict:
        return dict(self.__dict__)


def collect(site: Site, dry_run: bool = False, on_wait: Callable[[], None] | None = None) -> GcReport:
    """Garbage collection as a site action, whoever starts it: refused in read-only mode (even
    ``dry_run``), one audit row ``gc`` (target ``store``, or ``--dry-run``) carrying the report.

    ``on_wait`` is called when gc has to wait for running publishes to finish.
    """
    with site.action("gc", "--dry-run" if dry_run else "store") as detail:
        report = sweep(site, dry_run, on_wait)
        detail.update(report.to_json())
    return report


def sweep(site: Site, dry_run: bool = False, on_wait: Callable[[], None] | None = None) -> GcReport:
    """Mark every object reachable from any release envelope in the store, sweep the rest (no
    audit, no read-only check: ``collect`` is the entry point).

    ``on_wait`` is called when gc has to wait for running publishes to finish.
    """
    store = site.store
    report = GcReport(dry_run=dry_run)
    with store.gc_lock(on_wait):
        reachable: set[str] = set()
        reader = TreeReader(store)
        seen_trees: set[str] = set()
        for rid in store.list_release_ids():
            try:
                rel = load_release(site, rid)
            except (TrustError, BadInput, NotFound) as exc:
                raise BadInput(f"gc refused: {exc}; fix or remove that release first") from None
            report.releases += 1
            reachable.update(rel.source.get("files", {}).values())
            for image in rel.images.values():
                reachable.add(image.root)
                for _, e in reader.walk_unique(image.root, seen_trees):
                    if e.digest:
                        reachable.add(e.digest)
        report.reachable = len(reachable)
        for digest in list(store.iter_objects()):
            if digest in reachable:
                continue
            report.unreferenced += 1
            if dry_run:
                report.freed_bytes += store.object_stored_size(digest)
            else:
                report.freed_bytes += store.delete_object(digest)
                report.deleted += 1
        swept = sweep_packs(store, store.list_release_ids(), dry_run)
        report.packs, report.orphan_pack_files = swept.packs, swept.orphan_files or []
        report.pack_freed_bytes = swept.freed_bytes
        strays = getattr(store, "stray_temp_files", lambda: [])()
        report.temp_files = len(strays)
        if not dry_run:
            for p in strays:
                p.unlink(missing_ok=True)
    return report
