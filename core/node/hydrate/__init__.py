"""Node side of delivery: fetch what is missing, verify it, materialize, switch atomically, prune.

``hydrate`` brings ``<root>/current/<channel>`` (layout in ``core.node.root``) to the release a signed
channel pointer names. It is a sequence of steps, each in the module named for it (``verify``,
``choose``, ``fetch``, ``materialize``, ``switch``, ``record``, ``prune``), in an order that makes every
interruption harmless:

1. verify the pointer against the node's high-water mark (replay, same version with other bytes,
   expiry, channel mismatch: ``TrustError``, exit 4), then the release envelope (signatures, payload
   hash = id);
2. choose the image for this CPU (``core.arch.choose_image``; a per-node override wins);
3. fetch the image's tree objects level by level, in parallel, into ``cache/trees`` (unchanged
   directories of an earlier release are read locally), then every file object missing from
   ``cache/objects``: each download goes to ``cache/tmp``, is decompressed and re-hashed by the
   store (in one piece up to 32 MiB, large ones written with ``O_DIRECT``: ``core.store.codec``;
   streaming beyond), and only then renamed into the cache (read-only). When the store has
   packs for the image (``core.store.packs``) and many entries are missing, the missing trees the
   verified root reaches (compressed frames in one read, decoded only when reached; see
   ``prefetch_reached_trees``) and small files (written in place) come from a few
   byte-range reads of the pack instead, verified the same way; large objects and anything the
   pack lacks are still fetched one by one. The image's trees are kept as one bundle file,
   ``cache/trees/images/<root>``, re-hashed tree by tree whenever a later hydrate reads them;
4. materialize the image into ``releases/<hex>/.<arch>.tmp-…`` (its directories are made while
   the objects download) with hard links into the cache, then rename it to
   ``releases/<hex>/<arch>`` (an image directory exists only when complete);
5. ``syncfs`` the node's file system, switch ``current/<channel>`` (temp symlink + rename), and
   only then (record) keep the accepted pointer's bytes (``pointers/<channel>.json`` and beside
   the release) and raise the high-water mark in ``state.json``: either record alone keeps a
   replay out (``record.effective_mark``);
6. prune images beyond the ``keep`` most recent per channel, and cache objects no image links to.

Killed at any moment (kill -9), a rerun finds verified objects in the cache, stray temp files and
directories that it removes, and completes. Any failure before step 5 leaves ``current`` as it was.
"""

from __future__ import annotations

from typing import Any

#: What the package offers, and the module each lives in. Loaded on first use (PEP 562), so that
#: importing one step (``node env`` needs only ``verify.local_release``) does not import them all.
_EXPORTS = {"hydrate": "run", "describe_failure": "result", "local_release": "verify"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
