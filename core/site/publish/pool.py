"""The thread pool publish hashes and writes with, and the batches it hands out.

A task per file costs more than a tiny file's work (a future, a lock, a wake-up: ~50 µs of the
main thread on a loaded 2-core machine, for a file that takes ~20 µs to hash), so small files go
to the pool in batches: ``batches`` cuts a list into runs of at most ``BATCH_FILES`` items or
``BATCH_BYTES`` bytes, a large file alone in its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

BATCH_FILES = 256
BATCH_BYTES = 8 << 20


def parallel_map(fn: Callable[[T], R], items: list[T], workers: int) -> list[R]:
    """``map`` over a thread pool that drops queued work at once on an error or Ctrl-C."""
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        return list(pool.map(fn, items))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def batches(
    items: list[T], size_of: Callable[[T], int], max_items: int = BATCH_FILES, max_bytes: int = BATCH_BYTES
) -> Iterator[list[T]]:
    """``items`` in order, cut into runs of at most ``max_items`` items and about ``max_bytes``."""
    run: list[T] = []
    total = 0
    for item in items:
        n = size_of(item)
        if run and (len(run) >= max_items or total + n > max_bytes):
            yield run
            run, total = [], 0
        run.append(item)
        total += n
    if run:
        yield run
