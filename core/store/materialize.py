"""Materialisation: a Merkle tree of the store written out as a plain directory, in one place.

Both faces of delivery build directories from trees: ``export`` (site side, objects fetched from
the store into fresh files) and ``hydrate`` (node side, hard links into the node's verified
cache). They share the plan and the order of work here; only how a file is placed differs.

1. ``plan_image``: walk the tree once into flat lists (paths relative to the image, parents
   before children), so building it is a tight loop, and refuse (``BadInput``, exit 2) an image
   nested deeper than ``MAX_TREE_DEPTH`` or with a link that, resolved at its position through
   the image's other links, leaves it (``core.model.links``): nothing is written for such an image;
2. ``make_dirs``: every directory, writable until sealed (hydrate runs this on a side thread
   while the objects download);
3. ``build``: relative symlinks, then each file through the caller's ``place``, then ``seal``:
   directories chmod-ed deepest first, the top one last.

The caller builds into a temporary sibling directory and renames it into place only when
``build`` returned, so a destination exists only complete.
"""

from __future__ import annotations

import errno
import os
import shutil
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
    """The image's directories below the existing ``dest`` (writable until ``seal``).

    Hydrate runs this while objects download: ext4 spends ~0.3 ms of kernel time per mkdir
    choosing an inode group, time that overlaps the network and decompression this way.
    """
    mkdir = os.mkdir
    for rel in plan.dirs:
        mkdir(f"{dest}/{rel}")


def seal(dest: str, plan: ImagePlan, mode: int) -> None:
    """Give every directory of the image ``mode``, deepest first, ``dest`` itself last."""
    for rel in reversed(plan.dirs):
        os.chmod(f"{dest}/{rel}", mode)
    os.chmod(dest, mode)


def build(dest: str, plan: ImagePlan, place: Place, *, dir_mode: int, dirs_made: bool = False) -> tuple[int, int]:
    """Fill ``dest`` (its directories made unless ``dirs_made``): relative symlinks, then every file
    through ``place``, then ``seal`` at ``dir_mode``; return (files, bytes)."""
    if not dirs_made:
        make_dirs(dest, plan)
    for rel, target in plan.links:
        os.symlink(target, f"{dest}/{rel}")
    for rel, h, x, size in plan.files:
        place(f"{dest}/{rel}", h, x, size)
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
