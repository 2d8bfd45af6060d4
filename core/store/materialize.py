"""Materialisation: a Merkle tree of the store written out as a plain directory, in one place.

Both faces of delivery build directories from trees: ``export`` (site side, objects fetched from
the store into fresh files) and ``hydrate`` (node side, hard links into the node's verified
cache). They share the plan and the order of work here; only how a file is placed differs.

1. ``plan_image``: walk the tree once into flat lists (paths relative to the image, parents
   before children), so building it is a tight loop, and refuse (``BadInput``, exit 2) an image
   nested deeper than ``MAX_TREE_DEPTH`` or with a link that, resolved at its position through
   the image's other links, leaves it (``core.model.links``): nothing is written for such an image;
2. ``make_dirs``: every directory, writable until sealed (hydrate makes them on a side thread
   while the objects download: ``Skeleton.make``, which says how far it got);
3. ``build``: each file through the caller's ``place`` (behind the skeleton, if one is still
   being made: a file waits only for the directories made before it in walk order), then
   relative symlinks, then ``seal``: directories chmod-ed deepest first, the top one last.

The caller builds into a temporary sibling directory and renames it into place only when
``build`` returned, so a destination exists only complete.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from core.model.links import Node, check_links
from core.model.manifest import MODE_DIR, MODE_EXEC, MODE_FILE, Entry
from core.store.base import Store
from core.store.trees import TreeReader

#: ``place(path, hex, executable, size)``: put file object ``sha256:<hex>`` at ``path``.
Place = Callable[[str, str, bool, int], None]


@dataclass
class ImagePlan:
    """An image as flat lists (string paths relative to the image), so building it is a tight loop."""

    dirs: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (relative path, target)
    files: list[tuple[str, str, bool, int]] = field(default_factory=list)  # (relative path, hex, exec, size)
    #: Per file: how many of ``dirs`` precede it in walk order (its parent is among them).
    dirs_before: list[int] = field(default_factory=list)
    nbytes: int = 0


def plan_image(walk: Iterable[tuple[str, Entry]], where: str = "image") -> ImagePlan:
    """The plan of a depth-first ``(relpath, entry)`` walk (``walk_tree``: parents before children,
    depth bounded), its links checked at their positions (``check_plan``)."""
    plan = ImagePlan()
    for relpath, e in walk:
        if e.type == "dir":
            plan.dirs.append(relpath)
        elif e.type == "link":
            plan.links.append((relpath, e.target))  # type: ignore[arg-type]
        else:
            plan.files.append((relpath, e.digest[7:], e.mode & 0o111 != 0, e.size))  # type: ignore[index]
            plan.dirs_before.append(len(plan.dirs))
            plan.nbytes += e.size
    check_plan(plan, where)
    return plan


_DIR, _FILE = Node("dir"), Node("file")


def check_plan(plan: ImagePlan, where: str = "image") -> None:
    """Every link of the plan, resolved at its position through the image's links, stays inside
    the image (``core.model.links.check_links``; ``LinkError``, exit 2, otherwise)."""
    if not plan.links:
        return
    nodes: dict[str, Node] = {rel: Node("link", target) for rel, target in plan.links}
    nodes.update((rel, _DIR) for rel in plan.dirs)
    files = {rel for rel, *_ in plan.files}

    def lookup(rel: str) -> Node | None:
        return nodes.get(rel) or (_FILE if rel in files else None)

    check_links(plan.links, lookup, where)


def make_dirs(dest: str, plan: ImagePlan) -> None:
    """The image's directories below the existing ``dest`` (writable until ``seal``)."""
    mkdir = os.mkdir
    for rel in plan.dirs:
        mkdir(f"{dest}/{rel}")


class Skeleton:
    """``plan``'s directories made below ``dest`` (``make``, run on a side thread), with how many
    are made so far, so that ``build`` places each file as soon as its directory exists.

    Hydrate starts it while the objects download: ext4 spends ~0.1-0.3 ms of kernel time per
    mkdir choosing an inode group. When little is downloaded (an incremental hydrate), placing
    files behind it overlaps the links with the mkdirs instead of adding the two.
    """

    #: Directories made between two reports of progress.
    STEP = 64

    def __init__(self, dest: str, plan: ImagePlan) -> None:
        self.dest, self.plan = dest, plan
        self.made = 0
        self._error: BaseException | None = None
        self._done = False
        self._cond = threading.Condition()

    def make(self) -> None:
        """Make every directory of the plan, in order, reporting progress every ``STEP``; on a
        failure, record it (``wait_for`` raises it) and re-raise."""
        mkdir, dest, step = os.mkdir, self.dest, self.STEP
        n = 0
        try:
            for rel in self.plan.dirs:
                mkdir(f"{dest}/{rel}")
                n += 1
                if n % step == 0:
                    with self._cond:
                        self.made = n
                        self._cond.notify_all()
        except BaseException as exc:
            self._error = exc
            raise
        finally:
            with self._cond:
                self.made = n
                self._done = True
                self._cond.notify_all()

    def wait_for(self, n: int) -> None:
        """Return once ``n`` directories are made; raise what stopped ``make`` before that."""
        with self._cond:
            while self.made < n and not self._done:
                self._cond.wait()
        if self.made < n:
            raise self._error or RuntimeError("the skeleton stopped before its directories were made")


def seal(dest: str, plan: ImagePlan, mode: int) -> None:
    """Give every directory of the image ``mode``, deepest first, ``dest`` itself last."""
    for rel in reversed(plan.dirs):
        os.chmod(f"{dest}/{rel}", mode)
    os.chmod(dest, mode)


def build(
    dest: str,
    plan: ImagePlan,
    place: Place,
    *,
    dir_mode: int,
    dirs_made: bool = False,
    skeleton: Skeleton | None = None,
) -> tuple[int, int]:
    """Fill ``dest``: every file through ``place``, then relative symlinks, then ``seal`` at
    ``dir_mode``; return (files, bytes). The directories are made here unless ``dirs_made``, or
    are being made by ``skeleton`` (each file then waits for the directories before it)."""
    if skeleton is None and not dirs_made:
        make_dirs(dest, plan)
    if skeleton is None:
        for rel, h, x, size in plan.files:
            place(f"{dest}/{rel}", h, x, size)
    else:
        for (rel, h, x, size), need in zip(plan.files, plan.dirs_before, strict=True):
            if skeleton.made < need:
                skeleton.wait_for(need)
            place(f"{dest}/{rel}", h, x, size)
        skeleton.wait_for(len(plan.dirs))
    for rel, target in plan.links:
        os.symlink(target, f"{dest}/{rel}")
    seal(dest, plan, dir_mode)
    return len(plan.files), plan.nbytes


def link_or_copy(src: str, dest: str, mode: int) -> None:
    """Hard-link ``src`` at ``dest``; past the file system's link limit, a private copy at ``mode``."""
    try:
        os.link(src, dest)
    except OSError as exc:
        if exc.errno != errno.EMLINK:
            raise
        shutil.copyfile(src, dest)  # too many links to one inode: a private copy
        os.chmod(dest, mode)


def materialize(store: Store, root: str, dest: Path) -> tuple[int, int]:
    """Write the tree ``root`` into the existing empty directory ``dest`` with objects fetched (and
    verified) from ``store``: files 0644/0755 as published, directories 0755; return (files, bytes)."""

    def fetch(path: str, h: str, executable: bool, size: int) -> None:
        store.fetch_object_to("sha256:" + h, path, size)
        os.chmod(path, MODE_EXEC if executable else MODE_FILE)

    return build(str(dest), plan_image(TreeReader(store).walk(root)), fetch, dir_mode=MODE_DIR)
