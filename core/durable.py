"""Durable, atomic file writes shared by the store, the node and the site.

``atomic_write`` is the one way a file is replaced in this project: temp file, rename (or link)
into place, so a reader sees the old bytes or the new ones, never half. ``fsync_dir`` makes a
rename durable; one ``syncfs(2)`` after many writes is far cheaper than an fsync per file and is
enough to order "objects durable" before "release visible" (publish) or before "current switched"
(hydrate).

Modes are explicit, whatever the umask: ``atomic_write`` chmods its file to ``mode`` before the
rename, ``ensure_dir`` creates each missing directory with ``mode`` (chmod after mkdir, since
mkdir applies the umask), and ``create_private`` makes an empty file only its owner can read. A
permissive umask (000) never leaves a key, a config or a store directory writable by others.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path


def fsync_dir(path: Path | str) -> None:
    """Make a directory's entries (a rename, a new link) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: Path | str, mode: int = 0o755, *, parents: bool = True) -> Path:
    """``path`` as a directory; each one this call creates (with ``parents``, missing ancestors
    too) gets exactly ``mode``, whatever the umask. An existing directory is left as it is."""
    dest = Path(path)
    missing: list[Path] = []
    p = dest
    while not p.is_dir():
        missing.append(p)
        if not parents or p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, mode)
        except FileExistsError:
            if not d.is_dir():
                raise
            continue  # made by someone else meanwhile: theirs, as it is
        os.chmod(d, mode)
    return dest


def create_private(path: Path | str, mode: int = 0o600) -> bool:
    """Create ``path`` empty with exactly ``mode`` (default: owner read/write only), so a file that
    a library fills in later (SQLite) never exists with looser bits; False if it already existed."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    return True


def atomic_write(
    path: Path | str,
    data: bytes | Iterable[bytes],
    mode: int = 0o644,
    *,
    overwrite: bool = True,
    durable: bool = True,
    tmp_prefix: str | None = None,
    tmp_dir: Path | str | None = None,
) -> int:
    """Write ``data`` (bytes, or an iterable of chunks) to ``path`` atomically; the bytes written.

    The bytes go to a temporary file (``tmp_prefix`` + random, default ``.<name>.tmp-``) in
    ``tmp_dir`` (default: beside ``path``; it must be on the same file system), which gets
    ``mode`` and is then renamed over ``path``, or with ``overwrite=False`` hard-linked to it:
    ``link(2)`` fails if ``path`` exists, so a write-once file needs no check-then-act (0 is
    returned and ``path`` is left as it was). ``durable`` fsyncs the file before and the directory
    after the rename, so the new bytes survive a power cut. The temporary file never outlives the
    call, whatever fails; the mode is set on it before it becomes visible (a key is never readable
    by others, even for an instant).
    """
    dest = Path(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{dest.name}.tmp-" if tmp_prefix is None else tmp_prefix,
        dir=dest.parent if tmp_dir is None else tmp_dir,
    )
    written = 0
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, (bytes, bytearray, memoryview)):
                f.write(data)
                written = len(data)
            else:
                for chunk in data:
                    f.write(chunk)
                    written += len(chunk)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if overwrite:
            os.replace(tmp, dest)
        else:
            try:
                os.link(tmp, dest)
            except FileExistsError:
                written = 0
            finally:
                os.unlink(tmp)
        if durable:
            fsync_dir(dest.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return written


def _load_syncfs() -> Callable[[int], int] | None:
    import ctypes  # loaded on the first syncfs, not by every command that imports this module
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        syncfs: Callable[[int], int] = libc.syncfs
        return syncfs
    except (OSError, AttributeError):
        return None


_SYNCFS: list[Callable[[int], int] | None] = []  # [] until the first syncfs looks it up


def syncfs(path: Path | str) -> None:
    """Flush the whole file system holding ``path`` (``sync()`` where syncfs is unavailable)."""
    if not _SYNCFS:
        _SYNCFS.append(_load_syncfs())
    fd = os.open(path, os.O_RDONLY)
    try:
        if _SYNCFS[0] is None or _SYNCFS[0](fd) != 0:
            os.sync()
    finally:
        os.close(fd)
