"""Step 4 of a hydrate: the image as a directory of hard links into the cache.

The image is built in ``releases/<hex>/.<arch>.tmp-…`` (its directories made on a side thread
while the objects download: ``staging``), then filled with hard links into the cache (each as
soon as its directory exists) and relative symlinks, and sealed 0555 (``core.store.materialize``, shared with ``export``), then renamed to
``releases/<hex>/<arch>``: an image directory exists only when complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from core.node.hydrate.result import HydrateProgress
from core.node.root import NodeRoot, force_rmtree
from core.store.materialize import ImagePlan, Skeleton, build, link_or_copy

#: Mode of a materialized image's directories (read-only, like the cache it links to).
SEALED = 0o555


@dataclass
class Stage:
    """A temporary image directory whose directories are being made (``skeleton``, on ``made``)."""

    path: str
    skeleton: Skeleton
    made: Future[None]


@contextlib.contextmanager
def staging(image_dir: Path, plan: ImagePlan) -> Iterator[Stage]:
    """``releases/<hex>/.<arch>.tmp-…`` with ``plan``'s directories made on a side thread while the
    body runs (it fetches the objects); removed if the body fails.

    The directories run alongside the downloads: ext4 spends ~0.1-0.3 ms of kernel time per mkdir
    choosing an inode group, time that overlaps the network and decompression this way, and
    ``materialize`` links files behind it. A failure of the body wins over one of the side thread
    (which ``materialize`` raises otherwise).
    """
    tmp = tempfile.mkdtemp(prefix=f".{image_dir.name}.tmp-", dir=image_dir.parent)
    try:
        with ThreadPoolExecutor(max_workers=1) as side:
            skeleton = Skeleton(tmp, plan)
            yield Stage(tmp, skeleton, side.submit(skeleton.make))
    except BaseException:
        force_rmtree(Path(tmp))
        raise


def materialize(node: NodeRoot, stage: Stage, plan: ImagePlan, image_dir: Path, prog: HydrateProgress) -> None:
    """Fill the staged directories as they are made (hard links to the cache, relative symlinks;
    0555 directories), then rename the stage to ``image_dir``."""
    prog.phase("materialize")
    objects = str(node.objects)

    def link(path: str, h: str, executable: bool, size: int) -> None:
        src = f"{objects}/{h[:2]}/{h[2:]}.x" if executable else f"{objects}/{h[:2]}/{h[2:]}"
        link_or_copy(src, path, 0o555 if executable else 0o444)

    build(stage.path, plan, link, dir_mode=SEALED, skeleton=stage.skeleton)
    stage.made.result()
    os.rename(stage.path, image_dir)
