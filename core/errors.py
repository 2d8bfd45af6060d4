"""Error types and the exit codes they map to (DESIGN §8).

Every failure that an operator can cause or meet is one of these, carrying a one-line message.
The CLI prints that line on stderr and exits with ``exit_code``; the TUI shows the same words in
a notification. Nothing else should escape to the user as a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_CONFLICT = 3
EXIT_TRUST = 4


class DepotError(Exception):
    """Base class: a failure with a one-line, operator-facing message."""

    exit_code: int = EXIT_BAD_INPUT

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadInput(DepotError):
    """Malformed file, unknown or ambiguous id, bad path, usage error (exit 2)."""

    exit_code = EXIT_BAD_INPUT


class NotFound(BadInput):
    """A referenced release, object, channel, key or file does not exist (exit 2)."""


class Ambiguous(BadInput):
    """A short id matches several releases; ``candidates`` lists them (exit 2)."""

    def __init__(self, message: str, candidates: list[str]) -> None:
        super().__init__(message)
        self.candidates = candidates


class CheckFailed(DepotError):
    """A check ran and found problems: verify, smoke, some nodes failed (exit 1)."""

    exit_code = EXIT_CHECK_FAILED


class Conflict(DepotError):
    """A compare-and-swap lost: the channel (or index) moved meanwhile (exit 3)."""

    exit_code = EXIT_CONFLICT


class TrustError(DepotError):
    """Bad or missing signature, untrusted or revoked key, replay, expiry (exit 4)."""

    exit_code = EXIT_TRUST


class StoreError(DepotError):
    """The store could not be read or written (I/O, server error, corrupt object)."""

    exit_code = EXIT_CHECK_FAILED


class CorruptObject(StoreError):
    """An object's bytes do not hash to its name."""


class DiskFull(StoreError):
    """A write found no space (``ENOSPC``) or hit the file size limit (``EFBIG``) (exit 1).

    Writes are atomic (temp file, rename), so nothing half-written became visible; the message
    names the path and says to free space.
    """


class LocalStateError(DepotError):
    """``state.db`` could not be used for a moment or is damaged (subclasses say which)."""


class StateLocked(LocalStateError):
    """Another process held ``state.db`` locked past the busy timeout (exit 3: retry)."""

    exit_code = EXIT_CONFLICT


class StateDamaged(LocalStateError):
    """``state.db`` lost a table or is otherwise damaged (exit 2; the message says how to recover)."""


class StateFull(DiskFull, LocalStateError):
    """``state.db`` could not grow: the disk is full (exit 1)."""


DISK_FULL_ERRNOS = (28, 27)  # ENOSPC, EFBIG (errno numbers on Linux and the BSDs alike)


def disk_full(exc: OSError, what: str = "") -> DiskFull:
    """The one-line ``DiskFull`` for an ``OSError`` whose errno is ENOSPC or EFBIG."""
    where = exc.filename or what or "a file"
    kind = "no space left on the device" if exc.errno == 28 else "the file size limit was reached"
    return DiskFull(f"disk full writing {where}: {kind}; free space and run again")
