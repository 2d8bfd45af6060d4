"""Scanning a directory tree to publish: validation first, nothing written.

Only regular files, directories and relative symlinks that stay inside the tree are accepted;
names must be UTF-8 single components of at most 255 bytes, directories nest at most
``MAX_TREE_DEPTH`` (256) levels. A link stays inside when its target, resolved from the link's
directory through the tree's own links (``core.model.links``), does: ``d -> .`` then
``d/d/../..`` does not. Everything is checked before the store is touched, so bad input never
leaves a half-written store.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import BadInput
from core.model.links import Node, check_links
from core.model.manifest import MAX_TREE_DEPTH, check_link_target, check_name


@dataclass(slots=True)
class ScannedFile:
    relpath: str
    abspath: str
    size: int
    mtime_ns: int
    inode: int
    executable: bool
    digest: str | None = None
    data: bytes | None = None  # the bytes that were hashed, kept for a small file (publish.hashing)


@dataclass
class ScannedDir:
    """A directory: its files, links (name -> target) and subdirectories, by name."""

    relpath: str
    files: dict[str, ScannedFile] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    dirs: dict[str, ScannedDir] = field(default_factory=dict)


@dataclass
class ScannedTree:
    root: Path
    top: ScannedDir
    files: list[ScannedFile]
    dirs: int
    links: int

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)


_KIND_NAMES = {
    stat.S_IFSOCK: "a socket",
    stat.S_IFIFO: "a named pipe",
    stat.S_IFBLK: "a block device",
    stat.S_IFCHR: "a character device",
}


def scan_tree(root: Path) -> ScannedTree:
    """Walk ``root`` (not following symlinks) and validate every entry, then every link's resolution."""
    root = Path(root)
    try:
        st = os.stat(root)
    except FileNotFoundError:
        raise BadInput(f"{root}: no such directory") from None
    if not stat.S_ISDIR(st.st_mode):
        raise BadInput(f"{root}: not a directory")
    files: list[ScannedFile] = []
    dirs = 0
    links: list[tuple[str, str]] = []
    nodes: dict[str, Node] = {}  # every directory and link by relative path (files are "file")
    top = ScannedDir("")
    stack: list[tuple[str, ScannedDir, int]] = [(str(root), top, 0)]
    where_root = f"{root}"
    access, R_OK, S_ISREG, S_ISDIR = os.access, os.R_OK, stat.S_ISREG, stat.S_ISDIR
    while stack:
        absdir, node, depth = stack.pop()
        rel = node.relpath
        try:
            it = list(os.scandir(absdir))
        except PermissionError:
            raise BadInput(f"{absdir}: cannot read directory (permission denied)") from None
        for entry in it:
            name = entry.name
            relpath = f"{rel}/{name}" if rel else name
            check_name(name, where=where_root)
            est = entry.stat(follow_symlinks=False)  # scandir's own lstat: one syscall per entry
            mode = est.st_mode
            if S_ISREG(mode):
                if not access(entry.path, R_OK):
                    raise BadInput(f"{root / relpath}: cannot read file (permission denied)")
                f = ScannedFile(relpath, entry.path, est.st_size, est.st_mtime_ns, est.st_ino, bool(mode & 0o111))
                node.files[name] = f
                files.append(f)
                continue
            if S_ISDIR(mode):
                if depth + 1 > MAX_TREE_DEPTH:
                    shown = relpath if len(relpath) <= 80 else relpath[:80] + "…"
                    raise BadInput(
                        f"{root}: directories nested deeper than {MAX_TREE_DEPTH} levels (at {shown}), refused"
                    )
                dirs += 1
                sub = node.dirs[entry.name] = ScannedDir(relpath)
                nodes[relpath] = _DIR
                stack.append((entry.path, sub, depth + 1))
            elif stat.S_ISLNK(mode):
                where = str(root / relpath)
                target = os.readlink(entry.path)
                check_name_utf8(target, where)
                check_link_target(target, relpath, where=str(root))
                node.links[entry.name] = target
                nodes[relpath] = Node("link", target)
                links.append((relpath, target))
            else:
                kind = _KIND_NAMES.get(stat.S_IFMT(mode), "a special file")
                raise BadInput(
                    f"{root / relpath} is {kind}: only regular files, directories and symlinks can be published"
                )
    if links:
        file_paths = {f.relpath for f in files}

        def lookup(rel: str) -> Node | None:
            return nodes.get(rel) or (_FILE if rel in file_paths else None)

        check_links(sorted(links), lookup, str(root))
    return ScannedTree(root, top, files, dirs, len(links))


_DIR, _FILE = Node("dir"), Node("file")


def check_name_utf8(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"{where}: link target is not valid UTF-8") from None
