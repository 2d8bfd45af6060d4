"""``hydrate``: the steps of the package, in order (see ``core.node.hydrate``)."""

from __future__ import annotations

import os
import time
from datetime import datetime

from core.gc_pause import gc_paused
from core.model.manifest import DEFAULT_MAX_MANIFEST_BYTES
from core.node.hydrate.bundles import load_bundles
from core.node.hydrate.cache import Seal, cache_names, clean_temp, read_ledger, write_ledger
from core.node.hydrate.choose import Chosen, choose
from core.node.hydrate.fetch import fetch_objects, fetch_trees, keep_release, missing_objects, usable_pack
from core.node.hydrate.fetcher import Fetcher
from core.node.hydrate.materialize import materialize, staging
from core.node.hydrate.prune import kept_images, prune
from core.node.hydrate.record import record
from core.node.hydrate.result import HydrateProgress, HydrateResult, describe_failure, route_stats
from core.node.hydrate.switch import switch
from core.node.hydrate.trees import NodeTrees
from core.node.hydrate.verify import Verified, keep_stage, local_release, resolve_store_release, verify
from core.node.root import CurrentImage, NodeRoot, default_workers
from core.store.base import Store, check_channel_name
from core.store.materialize import plan_image
from core.store.packs import PACK_MIN_MISSING, PackIndex
from core.trust.signing import TrustSet


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
    with gc_paused():
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

    prog = progress or HydrateProgress()
    t0 = time.perf_counter()
    node.ensure()
    with node.lock():
        clean_temp(node)
        verified = verify(
            store,
            trust,
            node,
            channel,
            release=release,
            now=now or system_clock(),
            max_manifest_bytes=max_manifest_bytes,
        )
        chosen = choose(verified.release, cpu, arch)
        before = node.current(channel)
        result = _start(node, channel, verified, chosen, before)
        result.stale_mirrors = verified.stale_mirrors
        for mirror in verified.stale_mirrors:
            prog.phase(f"stale mirror {mirror['url']}: {mirror['reason']}")
        bytes_in_before = getattr(store, "stats", {}).get("object_bytes_in")

        keep_release(node, verified)
        image_dir = node.image_dir(verified.release_id, chosen.arch)
        verified_objects: set[str] = set()
        ledger = read_ledger(node)
        if not image_dir.is_dir():
            verified_objects = _fetch_and_materialize(store, node, verified, chosen, workers, prog, result, ledger)
            result.materialized = True
        else:
            result.reused_objects, result.reused_bytes = chosen.image.files, chosen.image.bytes
        if bytes_in_before is not None:
            result.transferred_bytes = store.stats["object_bytes_in"] - bytes_in_before  # type: ignore[attr-defined]
        result.routes = route_stats(store)

        result.switched = switch(node, channel, verified.release_id, chosen.arch, before, prog)
        record(
            node,
            channel,
            verified.release_id,
            chosen.arch,
            chosen.image.root,
            verified.pointer,
            now or system_clock(),
            verified.pointer_envelope,
        )
        keep_stage(node, channel, verified)  # a rollout stage pointer this node followed (issue 16)
        stats: dict[str, os.stat_result] = {}
        result.pruned = prune(node, keep, locked=True, stats=stats)
        write_ledger(node, verified_objects, old=ledger, stats=stats)  # after the last link and unlink
    result.seconds = round(time.perf_counter() - t0, 3)
    return result


def _start(
    node: NodeRoot, channel: str, verified: Verified, chosen: Chosen, before: CurrentImage | None
) -> HydrateResult:
    """The result as known before any fetch: what is installed where, and what was current."""
    ptr = verified.pointer
    return HydrateResult(
        channel=channel,
        release=verified.release_id,
        image=chosen.arch,
        cpu=chosen.cpu,
        reason=chosen.reason,
        version=ptr.version if ptr else None,
        path=str(node.image_dir(verified.release_id, chosen.arch)),
        previous=before.release if before else None,
        files=chosen.image.files,
        bytes=chosen.image.bytes,
    )


def _fetch_and_materialize(
    store: Store,
    node: NodeRoot,
    verified: Verified,
    chosen: Chosen,
    workers: int,
    prog: HydrateProgress,
    result: HydrateResult,
    ledger: dict[str, Seal],
) -> set[str]:
    """Steps 3 and 4 for an image not on the node yet: fetch its trees, then its missing objects
    while the image's directories are made (``staging``), then materialize it. Returns the cache
    names of the image's objects (all verified by this run)."""
    root, image_dir = chosen.image.root, node.image_dir(verified.release_id, chosen.arch)
    bundled = load_bundles(node)
    files = chosen.image.files
    cached = cache_names(node.objects)  # one listing, for the pack's choice and the objects' reuse

    with Fetcher(store, node, workers) as fetcher:

        def find_pack() -> PackIndex | None:
            pack = usable_pack(store, node, verified.release_id, chosen.arch, bundled, files, cached)
            if pack is not None:
                pack.spool = fetcher.run_tmp  # packs read whole land here (removed with the run's tmp)
            return pack

        trees = NodeTrees(node, fetcher, bundled)
        pack = fetch_trees(fetcher, trees, root, find_pack, prog, result, files)
        plan = plan_image(trees.walk(root))
        with staging(image_dir, plan) as stage:
            if pack is None and missing_objects(plan, cached) >= (1 if store.packed else PACK_MIN_MISSING):
                pack = find_pack()  # not needed for the trees, but for the many objects missing
            names = fetch_objects(fetcher, plan, pack, prog, result, cached, ledger)
            materialize(node, stage, plan, image_dir, prog)
    return names


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
