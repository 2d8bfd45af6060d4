"""Importing a library without the optional extras it loads whenever they happen to be installed.

httpx imports its command-line client (rich, pygments, click), httpcore its trio backend, and
sqlite-utils numpy and pandas (for column types of their values), each only if installed and
each with a fallback by design when absent. depot-console uses none of them, and on a machine
that has them they cost start-up (numpy: ~60 ms, and OpenBLAS threads that spin during a publish).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def hidden_modules(*names: str) -> Iterator[None]:
    """Make ``import <name>`` fail (``ImportError``) inside the block, for the modules not yet
    imported; afterwards they import normally again."""
    hidden = [n for n in names if n not in sys.modules]
    for n in hidden:
        sys.modules[n] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for n in hidden:
            if sys.modules.get(n, 0) is None:
                del sys.modules[n]
