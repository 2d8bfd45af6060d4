"""Step 4 of a hydrate: the image as a directory of hard links into the cache.

The image is built in ``releases/<hex>/.<arch>.tmp-…`` (its directories made on a side thread
while the objects download: ``staging``), then filled with relative symlinks and hard links into
the cache and sealed 0555 (``core.store.materialize``, shared with ``export``), then renamed to
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
from core.store.materialize import ImagePlan, build, link_or_copy, make_dirs

#: Mode of a materialized image's directories (read-only, like the cache it links to).
SEALED = 0o555


@dataclass
class Stage:
    """A temporary image directory whose directories are being made (``skeleton``)."""

    path: str
    skeleton: Future[None]


@contextlib.contextmanager
def staging(image_dir: Path, plan: ImagePlan) -> Iterator[Stage]:
    """``releases/<hex>/.<arch>.tmp-…`` with ``plan``'s directories made on a side thread while the
    body runs (it fetches the objects); removed if the body fails.

    The directories run alongside the downloads: ext4 spends ~0.3 ms of kernel time per mkdir
    choosing an inode group, time that overlaps the network and decompression this way. A failure
    of the body wins over one of the side thread (which ``materialize`` raises otherwise).
    """
    tmp = tempfile.mkdtemp(prefix=f".{image_dir.name}.tmp-", dir=image_dir.parent)
    try:
        with ThreadPoolExecutor(max_workers=1) as side:
            yield Stage(tmp, side.submit(make_dirs, tmp, plan))
    except BaseException:
        force_rmtree(Path(tmp))
        raise


def materialize(node: NodeRoot, stage: Stage, plan: ImagePlan, image_dir: Path, prog: HydrateProgress) -> None:
    """Fill the staged directories (relative symlinks, hard links to the cache; 0555 directories),
    then rename the stage to ``image_dir``."""
    stage.skeleton.result()  # the directories are made (or their error is raised)
    prog.phase("materialize")
    objects = str(node.objects)

    def link(path: str, h: str, executable: bool, size: int) -> None:
        src = f"{objects}/{h[:2]}/{h[2:]}.x" if executable else f"{objects}/{h[:2]}/{h[2:]}"
        link_or_copy(src, path, 0o555 if executable else 0o444)

    build(stage.path, plan, link, dir_mode=SEALED, dirs_made=True)
    os.rename(stage.path, image_dir)
