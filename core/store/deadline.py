"""An overall deadline for every HTTP operation, enforced at the socket.

httpx's timeouts bound each read, write and connect separately, so a server that drips one byte
just inside the read timeout (in the headers or the body) keeps a request alive for ever. Here
every socket read, write and connect of a request gets at most the time left until the deadline
of the operation it serves, and fails with ``DeadlinePassed`` (a ``StoreError``, exit 1) once that
time is gone. The deadline is set by ``operation_deadline`` around one store operation (a request
with its body, retries and backoff included) and travels with the thread, so the store's worker
threads each carry their own.

The wrapping sits in httpcore's public network-backend interface; installing it into an httpx
client reaches two private attributes (``Client._transport``/``_mounts`` and the pool's
``_network_backend``), all in ``install`` here. ``tests/unit/test_http_deadline.py`` fails if a
new httpx or httpcore moves them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import httpcore

from core.errors import StoreError

if TYPE_CHECKING:
    import httpx

_local = threading.local()


class DeadlinePassed(StoreError):
    """An HTTP operation ran past its overall deadline (exit 1, like every store failure)."""


@contextlib.contextmanager
def operation_deadline(seconds: float, what: str) -> Iterator[None]:
    """Bound everything the current thread sends and receives inside the block by ``seconds``.

    Nested blocks keep the outer (earlier or equal) deadline: an operation's retries share it.
    """
    outer = getattr(_local, "deadline", None)
    if outer is not None:
        yield
        return
    _local.deadline = (time.monotonic() + seconds, seconds, what)
    try:
        yield
    finally:
        _local.deadline = None


def remaining() -> float | None:
    """Seconds left for the current operation (``None``: no deadline), raising once none are."""
    current: tuple[float, float, str] | None = getattr(_local, "deadline", None)
    if current is None:
        return None
    at, seconds, what = current
    left = at - time.monotonic()
    if left <= 0:
        raise DeadlinePassed(f"{what}: not finished within its {seconds:g} s deadline ([http] deadline_s)")
    return left


def _bounded(timeout: float | None) -> float | None:
    left = remaining()
    if left is None:
        return timeout
    return left if timeout is None else min(timeout, left)


def _expired_or(exc: Exception) -> Exception:
    """``DeadlinePassed`` if the deadline is what made ``exc`` time out, else ``exc``."""
    try:
        remaining()
    except DeadlinePassed as passed:
        return passed
    return exc


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read and write stops at the operation's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return self._inner.read(max_bytes, _bounded(timeout))
        except httpcore.ReadTimeout as exc:
            raise _expired_or(exc) from None

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            self._inner.write(buffer, _bounded(timeout))
        except httpcore.WriteTimeout as exc:
            raise _expired_or(exc) from None

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        try:
            return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout)))
        except httpcore.ConnectTimeout as exc:
            raise _expired_or(exc) from None

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """Opens connections through ``inner`` and wraps their streams in ``_DeadlineStream``."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            stream = self._inner.connect_tcp(host, port, _bounded(timeout), local_address, socket_options)
        except httpcore.ConnectTimeout as exc:
            raise _expired_or(exc) from None
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_unix_socket(path, _bounded(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def install(client: httpx.Client) -> httpx.Client:
    """Make every connection ``client`` opens (directly or through a proxy mount) obey deadlines."""
    transports = [client._transport, *client._mounts.values()]  # noqa: SLF001 (see module doc)
    for transport in transports:
        if transport is None:
            continue
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is None:
            raise RuntimeError("httpx/httpcore internals changed: cannot install HTTP deadlines (core.store.deadline)")
        if not isinstance(backend, _DeadlineBackend):
            pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]
    return client
