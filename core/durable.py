"""Durability barriers shared by the store and the node: fsync a directory, syncfs a file system.

One ``syncfs(2)`` after many writes is far cheaper than an fsync per file and is enough to order
"objects durable" before "release visible" (publish) or before "current switched" (hydrate).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path


def fsync_dir(path: Path | str) -> None:
    """Make a directory's entries (a rename, a new link) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_syncfs():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError):
        return None


_SYNCFS = _load_syncfs()


def syncfs(path: Path | str) -> None:
    """Flush the whole file system holding ``path`` (``sync()`` where syncfs is unavailable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _SYNCFS is None or _SYNCFS(fd) != 0:
            os.sync()
    finally:
        os.close(fd)
