"""The node's object cache: listings, reuse checks, local copies, and what killed hydrates left.

Reuse of a cached object is never decided by its size alone (issue 12 item 13): an object no
image links to is re-hashed; one that images link to is reused without reading it only while its
inode is exactly as ``cache/objects.ledger`` recorded when this node last verified it (written at
the end of each hydrate, after its last link and unlink, for the objects that hydrate verified).
A ctime, which any write, ``chmod`` or ``utime`` moves and no unprivileged process can set, is
what makes the seal worth more than a size; re-hashing every reused object instead costs an
incremental hydrate a full read of the image (see the README's guarantees).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from core.durable import atomic_write
from core.model.digest import hash_file
from core.node.root import NodeRoot, force_rmtree


def cache_names(base: Path) -> set[str]:
    """``cache_name`` of every entry of a fan-out cache directory: one listing per
    subdirectory, where a check per object would cost a path and a stat each (on a fresh node,
    thousands of them for nothing)."""
    names: set[str] = set()
    try:
        subs = list(os.scandir(base))
    except FileNotFoundError:
        return names
    for sub in subs:
        if sub.is_dir(follow_symlinks=False):
            names.update(f"{sub.name}/{n}" for n in os.listdir(sub.path))
    return names


#: ``cache/objects.ledger``: what each object's inode looked like when this node last verified it.
LEDGER = "objects.ledger"
#: "device inode size mode owner mtime-ns ctime-ns" of a cache file, as the ledger writes it (kept
#: as text: comparing the line's text costs less than parsing its numbers for every object).
Seal = str


def seal_of(st: os.stat_result) -> Seal:
    return f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mode} {st.st_uid} {st.st_mtime_ns} {st.st_ctime_ns}"


def read_ledger(node: NodeRoot) -> dict[str, Seal]:
    """``cache_name`` -> the object's ``Seal`` when it was last verified ({} if no ledger).

    A line that is not a name and seven decimal numbers is skipped: its object is re-hashed
    before reuse.
    """
    out: dict[str, Seal] = {}
    try:
        data = (node.cache / LEDGER).read_bytes()
    except FileNotFoundError:
        return out
    for line in data.decode("ascii", "replace").splitlines():
        name, _, seal = line.partition(" ")
        parts = seal.split(" ")
        if len(parts) == 7 and all(p.isdigit() for p in parts):
            out[name] = seal
    return out


def write_ledger(
    node: NodeRoot,
    verified: set[str],
    tmpdir: Path | None = None,
    old: dict[str, Seal] | None = None,
    stats: dict[str, os.stat_result] | None = None,
) -> None:
    """Record the seal of every cache object verified by this run (``verified``: cache names),
    and keep the entries of the others only if their inode is exactly as recorded (an object
    changed since, or whose ctime a link or unlink moved, is dropped: re-hashed when next used).

    Run after the last link or unlink of the hydrate (links and unlinks move an inode's ctime).
    ``old`` is the ledger as read earlier under the same node lock (read again if not given);
    ``stats`` the ``stat`` of every cache object taken since the last link or unlink (``prune``
    takes them), so they are not taken twice.
    """
    if old is None:
        old = read_ledger(node)
    if stats is None:
        stats = {}
        for name in cache_names(node.objects):
            with contextlib.suppress(FileNotFoundError):
                stats[name] = os.stat(f"{node.objects}/{name}", follow_symlinks=False)
    lines = []
    for name, st in stats.items():
        seal = seal_of(st)
        if name in verified or old.get(name) == seal:
            lines.append(f"{name} {seal}\n")
    atomic_write(node.cache / LEDGER, "".join(lines).encode("ascii"), 0o644, durable=False, tmp_dir=tmpdir)


def cached_ok(path: str | Path, digest: str, size: int, ledger: dict[str, Seal] | None = None, name: str = "") -> bool:
    """Whether the cached object at ``path`` can be reused; a damaged one is removed.

    Trusted without re-reading only if some image links to it (link count > 1: it was complete
    when that image was switched to, after a ``syncfs``) **and** its inode is exactly as the
    ledger recorded when it was last verified: same device, inode, size, mode (read-only), owner,
    mtime and ctime. Any write, truncation, ``chmod`` or ``utime`` moves the ctime, which no
    unprivileged process can set back. Anything else is re-hashed (an object no image links to
    yet, what an interrupted hydrate or a power loss can leave; one whose seal differs); one of
    the wrong size or bytes is removed, so it is fetched again into a new inode.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    ok = st.st_size == size and not st.st_mode & 0o222
    if ok and not (st.st_nlink > 1 and ledger is not None and ledger.get(name) == seal_of(st)):
        ok = hash_file(path)[0] == digest
    if not ok:
        os.unlink(path)  # truncated, damaged or foreign: fetch it again
    return ok


def copy_into_cache(src: Path, dest: Path, mode: int, tmpdir: Path) -> None:
    """A cached object under its other mode's name (``.x`` or not): a local copy, not a fetch."""
    fd, tmp = tempfile.mkstemp(dir=tmpdir)
    os.close(fd)
    shutil.copyfile(src, tmp)
    os.chmod(tmp, mode)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)


def clean_temp(node: NodeRoot) -> None:
    """Remove what killed hydrates left: downloads in flight, half-materialized images, temp links."""
    for p in node.tmp.iterdir():
        force_rmtree(p)
    for rel in node.releases.iterdir():
        if rel.is_dir():
            for p in rel.iterdir():
                if p.name.startswith(".") and ".tmp-" in p.name:
                    force_rmtree(p)
    for p in node.current_dir.iterdir():
        if p.name.startswith(".") and ".tmp-" in p.name:
            p.unlink()
