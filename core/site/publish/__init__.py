"""Publish: directory trees -> objects + trees + a signed release + the index (DESIGN §2, §3).

``publish`` is three steps, each in the module named for it:

- ``plan`` (``publish.plan``): everything that can fail on bad input, with nothing written;
- ``write`` (``publish.write``): the store's bytes, in the order below, under the publish lock;
- ``announce`` (``publish.announce``): the site's catalogue and the ``post_publish`` hook.

Order of work, chosen so that no failure leaves a half-written store:

1. scan and validate every input tree (nothing written yet);
2. hash files, reusing the (path, size, mtime, inode) -> digest cache in the database;
3. run the ``pre_publish`` hook (a failing hook aborts here, nothing written);
4. under the store's shared publish lock (gc takes it exclusively, so it can never delete an
   object this publish decided to reuse): write missing objects, then tree objects, then the
   image packs and the release's pack list (``core.store.packs``), then the release envelope, then
   update ``index.json`` by compare-and-swap;
5. run the ``post_publish`` hook.

A publish killed in step 4 leaves only complete, unreferenced objects (and perhaps ``.tmp-*``
files), which a rerun reuses and ``gc`` removes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from core.gc_pause import gc_paused
from core.site.publish.announce import announce
from core.site.publish.args import parse_image_args, parse_smoke
from core.site.publish.hashing import RACY_NS, hash_all
from core.site.publish.hooks import aborting, hook_env, run_hook
from core.site.publish.plan import Plan, plan
from core.site.publish.pool import parallel_map
from core.site.publish.result import Progress, PublishResult
from core.site.publish.write import PACK_REUSE_LOOKBACK, write
from core.site.site import Site


def publish(
    site: Site,
    name: str,
    images: dict[str, Path],
    *,
    label: str = "",
    parent: str | None = None,
    builder: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
    smoke: dict[str, Any] | None = None,
    cpu_targets: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> PublishResult:
    """Publish one release made of one tree per micro-architecture; return what was done."""
    with gc_paused():  # tens of thousands of scanned files, live until the end
        return _publish(site, name, images, label, parent, builder, source, smoke, cpu_targets, progress)


def _publish(
    site: Site,
    name: str,
    images: dict[str, Path],
    label: str,
    parent: str | None,
    builder: dict[str, Any] | None,
    source: dict[str, Any] | None,
    smoke: dict[str, Any] | None,
    cpu_targets: dict[str, str] | None,
    progress: Progress | None,
) -> PublishResult:
    t0 = time.perf_counter()
    planned = plan(
        site,
        name,
        images,
        label=label,
        parent=parent,
        builder=builder,
        source=source,
        smoke=smoke,
        cpu_targets=cpu_targets,
        progress=progress,
    )
    env = hook_env(site, planned)
    run_hook(site, "pre_publish", env)  # a failing hook aborts here: nothing written, no abort hook
    with aborting(site, env):
        write(site, planned, progress)
    announce(site, planned, env)
    planned.result.seconds = time.perf_counter() - t0
    return planned.result


__all__ = [
    "PACK_REUSE_LOOKBACK",
    "RACY_NS",
    "Plan",
    "Progress",
    "PublishResult",
    "aborting",
    "announce",
    "hash_all",
    "hook_env",
    "parallel_map",
    "parse_image_args",
    "parse_smoke",
    "plan",
    "publish",
    "run_hook",
    "write",
]
