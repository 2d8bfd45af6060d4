"""The store behind HTTP(S): read from any static web server, publish to WebDAV-enabled nginx.

Reading needs nothing but static files. Objects are streamed through a zstd decompressor into
their destination while being hashed, and the stream is cut as soon as it yields more bytes than
the manifest promised (or the compressed body exceeds a bound derived from that size), so a
hostile or broken server can neither fill a disk nor make a reader trust wrong bytes.

Robustness:

* **Mirrors.** ``HttpStore`` takes several base URLs; each request tries them in order. A mirror
  that refuses or times out a connection is marked down for ``down_for`` seconds, so later
  requests go straight to the next one: a dead mirror costs one connect attempt, not a failure.
  A node reads a channel pointer from every mirror at once (``read_file_each``) and keeps the
  newest valid one (``core.node.hydrate.verify``), so a lagging mirror cannot hold it back.
* **Retries.** 5xx answers, connect errors and timeouts are retried with exponential backoff
  (``backoff``, default 0.2/0.4 s between three rounds; ``sleep`` is injectable for tests).
* **Proxies.** An explicit list (site config) is tried in order, like mirrors; without one the
  usual ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` environment applies (httpx ``trust_env``).
* **Conditional GET.** ``index.json`` and ``channels/*.json`` are cached in memory with their
  ``ETag``/``Last-Modified``, so re-reading an unchanged file costs a 304. nginx's validators
  have one-second granularity (mtime and size), so a copy fetched within two seconds of its
  modification is never revalidated, only refetched: a same-size rewrite in the same second can
  therefore not be mistaken for "unchanged" (git's "racy clean" rule). A server that sends an
  ``ETag`` without ``Last-Modified`` is trusted to make it change with the content.

Publishing (``put_object``, ``write_file``, ``delete_object``, ``compare_and_swap``) needs a
server accepting ``PUT`` and ``DELETE``; with nginx::

    location /depot/ {
        alias /srv/depot/;
        autoindex on; autoindex_format json;     # list_files / iter_objects (gc, verify)
        dav_methods PUT DELETE MKCOL; create_full_put_path on;   # MKCOL: see compare_and_swap
        dav_access user:rw group:r all:r;
        client_max_body_size 0;
    }

nginx writes a PUT body to a temp file and renames it into place, so objects still appear only
when complete. Writes go to the first (primary) URL only, never to a mirror: failing over a
write would split the store. ``write_file`` is check-then-PUT (write-once by reading first);
``compare_and_swap`` is serialised by an atomic ``MKCOL`` claim, since nginx ignores ``If-Match``
on ``PUT`` (see there).
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import io
import json
import os
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import zstandard

from core.errors import BadInput, Conflict, CorruptObject, NotFound, StoreError
from core.optional import hidden_modules
from core.store import DEFAULT_DEADLINE_S
from core.store.base import Store, ensure_relpath, layout_of, object_path, store_meta
from core.store.codec import (
    MAX_OBJECT_BYTES,
    PREALLOCATE_MAX,
    compressed_bound,
    decode_stream,
    decode_to_file,
    decode_verified,
)
from core.store.local import ZSTD_LEVEL

#: Default of ``mutable_max_age_s``: the most seconds a cache may serve a channel pointer or
#: ``index.json`` without revalidating it (``console serve-config nginx`` sends the same).
DEFAULT_MUTABLE_MAX_AGE_S = 60


# httpx's command-line client and httpcore's trio backend (``core.optional``): hiding them while
# httpx and httpcore load saves ~80 ms of every node command's start-up (``python -X importtime``).
with hidden_modules("httpx._main", "trio"):
    import httpcore  # noqa: F401 (httpx would import it on the first Client, outside this guard)
    import httpx

    from core.store import deadline

#: The slowest transfer an operation's deadline allows for: object and range transfers get
#: ``deadline_s`` plus their size at this rate (1 MiB/s), so a large object over a slow link
#: still fits while a server dripping bytes does not.
SLOWEST_RATE = 1 << 20
#: Largest metadata file (envelope, index, listing) read into memory.
MAX_FILE_BYTES = 64 << 20
_CHUNK = 1 << 16
_R = TypeVar("_R")
#: Objects promised at most this size are read whole, then decompressed and hashed in one call
#: each (C code without the GIL): several downloads in threads then overlap instead of taking
#: turns per 64 KiB chunk. Larger ones are streamed through a bounded buffer. (The codec's bound
#: for decoding into one buffer: the two must agree.)
WHOLE_OBJECT_BYTES = PREALLOCATE_MAX
_OUT_CHUNK = 1 << 20
_CACHE_ENTRIES = 256
#: A cached copy is revalidated only if it was older than this when fetched (see module doc).
_RACY_SECONDS = 2


def _is_conditional(relpath: str) -> bool:
    return relpath == "index.json" or (relpath.startswith("channels/") and relpath.endswith(".json"))


@dataclass
class _Route:
    """One way to reach the store: a base URL through one client (one proxy, or the env's)."""

    base: str
    client: httpx.Client
    proxy: str | None
    down_until: float = 0.0

    def describe(self) -> str:
        return self.base + (f" via proxy {self.proxy}" if self.proxy else "")


@dataclass
class _Cached:
    base: str
    etag: str | None
    last_modified: str | None
    data: bytes


class _CappedSource:
    """File-like view of a response body that counts bytes and refuses to read past ``cap``."""

    def __init__(self, chunks: Iterator[bytes], cap: int, digest: str, on_bytes: Callable[[int], None]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._cap = cap
        self._read = 0
        self._digest = digest
        self._on_bytes = on_bytes

    def read(self, n: int = -1) -> bytes:
        if not self._buf:
            self._buf = next(self._chunks, b"")
            self._read += len(self._buf)
            self._on_bytes(len(self._buf))
            if self._read > self._cap:
                raise CorruptObject(
                    f"object {self._digest}: compressed body exceeds {self._cap} bytes, "
                    "more than its promised size can take"
                )
        if n is None or n < 0:
            n = len(self._buf)
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


def _env_proxied(bases: Sequence[str]) -> bool:
    """Whether the environment's ``HTTP(S)_PROXY`` applies to any of ``bases`` (``NO_PROXY`` honoured)."""
    env = urllib.request.getproxies()
    for base in bases:
        parts = urllib.parse.urlsplit(base)
        if env.get(parts.scheme) and not urllib.request.proxy_bypass(parts.hostname or ""):
            return True
    return False


def _answered_by_cache(resp: httpx.Response) -> bool:
    """A cache's own answer (Squid, Varnish and CDNs say so in ``X-Cache``/``X-Cache-Status``)."""
    for name in ("x-cache", "x-cache-status"):
        if resp.headers.get(name, "").strip().upper().startswith("HIT"):
            return True
    return False


def _may_use_tls(bases: Sequence[str], proxies: Sequence[str] | None) -> bool:
    """Whether any connection of this store can be TLS: an https mirror or proxy (the configured
    ones, or else those of the environment). Redirects are never followed."""
    chosen = list(proxies or []) or list(urllib.request.getproxies().values())
    return any(u.lower().startswith("https:") for u in [*bases, *chosen])


#: For a store that can make no TLS connection: a context that verifies and trusts nobody, so an
#: unexpected TLS connection fails closed. Loading the system CA bundle instead costs ~20 ms of
#: every node command's start-up.
_NO_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class _Unavailable(Exception):
    """Internal: one attempt on one route failed in a retryable way."""


class HttpStore(Store):
    """A store reached over HTTP(S) at one or more mirror URLs. Thread-safe.

    ``urls``: base URLs in failover order (the first is the primary, the only one written to).
    ``proxies``: proxy URLs in failover order; ``None`` or empty honours the environment.
    ``tries``/``backoff``/``sleep``: retry rounds and the pauses between them.
    ``down_for``/``clock``: how long a mirror that refused a connection is skipped.
    ``max_connections``: size of each connection pool (batch helpers use ``max_workers``).
    ``deadline_s``: the most one operation may take, retries and backoff included, whatever the
    server drips (``core.store.deadline``); object transfers get ``deadline_s`` plus their promised
    size at ``SLOWEST_RATE``.
    """

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        proxies: Sequence[str] | None = None,
        timeout: float | httpx.Timeout = httpx.Timeout(60.0, connect=5.0),
        tries: int = 3,
        backoff: Sequence[float] = (0.2, 0.4, 0.8),
        sleep: Callable[[float], None] = time.sleep,
        down_for: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        max_connections: int = 32,
        verify: bool | str = True,
        deadline_s: float = DEFAULT_DEADLINE_S,
        mutable_max_age_s: float = DEFAULT_MUTABLE_MAX_AGE_S,
    ) -> None:
        if isinstance(urls, str):
            urls = [u.strip() for u in urls.split(",") if u.strip()]
        if not urls:
            raise BadInput("an HTTP store needs at least one URL")
        bases = []
        for url in urls:
            parsed = urllib.parse.urlsplit(url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise BadInput(f"invalid store URL {url!r}: expected http(s)://host/path")
            bases.append(url if url.endswith("/") else url + "/")
        self.urls = bases
        self.location = ",".join(bases)
        self._encoders = threading.local()  # zstd contexts are not thread-safe: one per thread
        self.tries = max(1, int(tries))
        self.backoff = tuple(backoff) or (0.0,)
        self._sleep = sleep
        self._clock = clock
        self.down_for = down_for
        self.deadline_s = float(deadline_s)
        self.mutable_max_age_s = max(0, int(mutable_max_age_s))
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        tls: ssl.SSLContext | str | bool = verify
        if verify is True and not _may_use_tls(bases, proxies):
            tls = _NO_TLS

        def new_client(proxy: str | None) -> httpx.Client:
            """One connection pool; through ``proxy``, else as the environment says (``HTTP(S)_PROXY``)."""
            client = httpx.Client(
                proxy=proxy,
                trust_env=proxy is None,
                timeout=timeout,
                limits=limits,
                verify=tls,
                follow_redirects=False,
                headers={"Accept-Encoding": "identity", "User-Agent": "depot-console"},
            )
            return deadline.install(client)

        clients: list[tuple[str | None, httpx.Client]] = []
        try:
            for proxy in proxies or []:
                clients.append((proxy, new_client(proxy)))
        except (ValueError, httpx.InvalidURL) as exc:
            for _, client in clients:
                client.close()
            raise BadInput(f"invalid proxy URL {proxy!r}: {exc}") from None
        if not clients:
            clients = [(None, new_client(None))]
        self._clients = [c for _, c in clients]
        self._routes = [_Route(base, client, proxy) for base in bases for proxy, client in clients]
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        #: Whether a cache may sit between this store and the origin: a proxy (configured, or from
        #: the environment for these URLs) or an answer carrying ``Via``/``X-Cache``. Readers then
        #: prefer requests a cache can keep (whole packs, loose objects) over byte ranges.
        self.behind_cache = bool(proxies) or _env_proxied(bases)
        #: Requests and body bytes per route: ``origin`` (the primary answered, directly or through
        #: a proxy that missed), ``proxy`` (a cache answered: ``X-Cache: HIT``), ``mirror``.
        self.route_stats: dict[str, dict[str, int]] = {
            k: {"requests": 0, "bytes": 0} for k in ("origin", "proxy", "mirror")
        }
        #: Counters for diagnostics and tests: requests sent, connect failures, object bytes read.
        self.stats = {"requests": 0, "connect_errors": 0, "retries": 0, "object_bytes_in": 0, "not_modified": 0}

    # -- lifecycle -----------------------------------------------------------------------
    @classmethod
    def open(cls, urls: str | Sequence[str], **kwargs: Any) -> HttpStore:
        """Open an existing store, checking its ``store.json``."""
        store = cls(urls, **kwargs)
        try:
            raw = store.read_file("store.json")
            if raw is None:
                raise NotFound(f"no depot store at {store.location} (store.json missing)")
            try:
                meta = json.loads(raw)
            except (ValueError, RecursionError):
                raise BadInput(f"unreadable store.json at {store.location}") from None
            store.packed = layout_of(meta, store.location) == "packed"
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def create(cls, urls: str | Sequence[str], **kwargs: Any) -> HttpStore:
        """Create an empty store on a writable server (idempotent), then open it."""
        store = cls(urls, **kwargs)
        try:
            if store.read_file("store.json") is None:
                store.write_file("store.json", store_meta())
        finally:
            store.close()
        return cls.open(urls, **kwargs)

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def __enter__(self) -> HttpStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------
    def _routes_for(self, primary_only: bool, base: str | None = None) -> list[_Route]:
        only = self.urls[0] if primary_only else base  # one mirror's routes, or every route
        routes = [r for r in self._routes if r.base == only] if only else self._routes
        now = self._clock()
        with self._lock:
            live = [r for r in routes if r.down_until <= now]
        # When every route is marked down, try them all anyway: better late than failed.
        return live or list(routes)

    def _mark_down(self, route: _Route) -> None:
        with self._lock:
            route.down_until = self._clock() + self.down_for
            self.stats["connect_errors"] += 1

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] += n

    def _attempt(
        self,
        route: _Route,
        method: str,
        relpath: str,
        headers: dict[str, str] | None,
        content: bytes | Callable[[], Iterator[bytes]] | None,
    ) -> httpx.Response:
        """One request on one route; a retryable failure raises ``_Unavailable``."""
        url = route.base + urllib.parse.quote(relpath)
        body = content() if callable(content) else content
        request = route.client.build_request(method, url, headers=headers, content=body)
        self._count("requests")
        try:
            resp = route.client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError) as exc:
            self._mark_down(route)
            raise _Unavailable(f"{route.describe()}: cannot connect ({exc or type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise _Unavailable(f"{route.describe()}: {type(exc).__name__} {exc}".rstrip()) from None
        if resp.status_code >= 500:
            resp.close()
            raise _Unavailable(f"{route.describe()}: HTTP {resp.status_code} for {method} {relpath}")
        return resp

    def _retry_rounds(self) -> Iterator[int]:
        """Yield round numbers, sleeping the backoff before every round but the first."""
        for n in range(self.tries):
            if n:
                deadline.remaining()  # no backoff once the operation's time is gone
                self._count("retries")
                self._sleep(self.backoff[min(n - 1, len(self.backoff) - 1)])
            yield n

    @contextlib.contextmanager
    def _send(
        self,
        method: str,
        relpath: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | Callable[[], Iterator[bytes]] | None = None,
        primary_only: bool = False,
        exclude: set[int] | None = None,
        base: str | None = None,
    ) -> Iterator[httpx.Response]:
        """Send with mirror failover and retries; yield the streamed response (status < 500).

        Raises ``StoreError`` naming the last failure once every round on every route failed.
        The response is closed on exit, unread body included (the connection is then dropped).
        ``exclude``: ids of routes not to use (one that served wrong bytes), unless none is left.
        The route that answered is ``resp.extensions["depot_route"]``. ``base``: that mirror only.
        """
        last = "no route"
        with deadline.operation_deadline(self.deadline_s, f"{method} {relpath}"):
            for _ in self._retry_rounds():
                routes = self._routes_for(primary_only, base)
                routes = [r for r in routes if id(r) not in (exclude or ())] or routes
                for route in routes:
                    try:
                        resp = self._attempt(route, method, relpath, headers, content)
                    except _Unavailable as exc:
                        last = str(exc)
                        continue
                    resp.extensions["depot_route"] = route
                    try:
                        yield resp
                    finally:
                        resp.close()
                        self._account(route, resp)
                    return
        raise StoreError(f"{method} {relpath} failed after {self.tries} tries: {last}")

    def _account(self, route: _Route, resp: httpx.Response) -> None:
        if _answered_by_cache(resp) or "via" in resp.headers:
            self.behind_cache = True
        key = "proxy" if _answered_by_cache(resp) else "mirror" if route.base != self.urls[0] else "origin"
        with self._lock:
            stats = self.route_stats[key]
            stats["requests"] += 1
            stats["bytes"] += resp.num_bytes_downloaded

    def _exclude(self, exclude: set[int], resp: httpx.Response) -> None:
        """Do not ask the route that gave ``resp`` again for this file, if another route is left."""
        route = resp.extensions.get("depot_route")
        if route is not None and len(self._routes) - len(exclude) > 1:
            exclude.add(id(route))

    def _fail(self, resp: httpx.Response, what: str) -> StoreError:
        return StoreError(f"{what}: HTTP {resp.status_code} from {resp.request.url}")

    # -- objects -------------------------------------------------------------------------
    def encode_object(self, data: bytes) -> bytes:
        """The stored form of ``data`` (as ``LocalStore.encode_object``: one zstd frame, level 3)."""
        cctx = getattr(self._encoders, "cctx", None)
        if cctx is None:
            cctx = self._encoders.cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        return cctx.compress(data)

    def has_object(self, digest: str) -> bool:
        if self._head_object(digest, primary_only=False):
            return True
        return self.packed_location(digest) is not None

    def _head_object(self, digest: str, *, primary_only: bool) -> bool:
        with self._send("HEAD", object_path(digest), primary_only=primary_only) as resp:
            if resp.status_code == 200:
                return True
            if resp.status_code == 404:
                return False
            raise self._fail(resp, f"HEAD object {digest}")

    def missing_objects(self, digests: Iterable[str], *, max_workers: int = 8) -> set[str]:
        """The subset of ``digests`` not on the primary, probed with up to ``max_workers`` HEADs at once.

        Publishers use this to decide what to upload, so it asks the primary (the copy written
        to), never a mirror that may lag behind it.
        """
        unique = sorted(set(digests))
        with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
            present = list(pool.map(lambda d: self._head_object(d, primary_only=True), unique))
        missing = {d for d, here in zip(unique, present) if not here}
        return missing - self.packed_present(missing)

    def object_stored_size(self, digest: str) -> int:
        with self._send("HEAD", object_path(digest)) as resp:
            if resp.status_code == 404:
                hit = self.packed_location(digest)
                if hit is not None:
                    return hit[2]
                raise NotFound(f"object {digest} missing from store")
            if resp.status_code != 200:
                raise self._fail(resp, f"HEAD object {digest}")
            try:
                return int(resp.headers["content-length"])
            except (KeyError, ValueError):
                raise StoreError(f"HEAD object {digest}: no Content-Length from {resp.request.url}") from None

    def _put(self, relpath: str, content: bytes | Callable[[], Iterator[bytes]]) -> None:
        with self._send("PUT", relpath, content=content, primary_only=True) as resp:
            if resp.status_code not in (200, 201, 204):
                raise self._fail(resp, f"PUT {relpath}")

    def put_object(self, digest: str, data: bytes) -> int:
        if self._head_object(digest, primary_only=True):
            return 0
        return self._put_compressed(digest, data)

    def put_object_file(self, digest: str, path: str) -> int:
        if self._head_object(digest, primary_only=True):
            return 0
        size = os.path.getsize(path)
        if size <= (8 << 20):
            with open(path, "rb") as f:
                return self._put_compressed(digest, f.read())
        sent = [0]

        def chunks() -> Iterator[bytes]:
            # Streamed like LocalStore.put_object_file for big files (same frame bytes).
            sent[0] = 0
            cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
            with open(path, "rb") as f:
                for chunk in cctx.read_to_iter(f, size=size, read_size=1 << 20, write_size=1 << 20):
                    sent[0] += len(chunk)
                    yield chunk

        with deadline.operation_deadline(self._transfer_deadline(size), f"PUT object {digest}"):
            self._put(object_path(digest), chunks)
        return sent[0]

    def _put_compressed(self, digest: str, data: bytes) -> int:
        """Compress (as LocalStore does) and PUT; the caller has checked existence."""
        # Same level and API as LocalStore: both backends write identical bytes for an object.
        compressed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(data)
        self._put(object_path(digest), compressed)
        return len(compressed)

    def _get_object(
        self,
        digest: str,
        size: int | None,
        whole: Callable[[bytes, int], _R],
        streamed: Callable[[httpx.Response, int, int], _R],
    ) -> _R:
        """GET an object (mirrors, retries, bounds) and hand its body on: an object promised at
        most ``WHOLE_OBJECT_BYTES`` is read in one piece and given to ``whole(frame, limit)``,
        a larger one to ``streamed(response, limit, cap)``. A connection lost mid-body starts
        the object again in the next round."""
        limit = size if size is not None else MAX_OBJECT_BYTES
        cap = compressed_bound(limit)
        relpath = object_path(digest)
        with deadline.operation_deadline(self._transfer_deadline(limit), f"GET object {digest}"):
            return self._get_object_rounds(digest, relpath, limit, cap, whole, streamed)

    def _transfer_deadline(self, size: int) -> float:
        """The deadline of moving ``size`` bytes: ``deadline_s`` plus the size at ``SLOWEST_RATE``."""
        return self.deadline_s + size / SLOWEST_RATE

    def _get_object_rounds(
        self,
        digest: str,
        relpath: str,
        limit: int,
        cap: int,
        whole: Callable[[bytes, int], _R],
        streamed: Callable[[httpx.Response, int, int], _R],
    ) -> _R:
        last = ""
        bad: set[int] = set()  # routes that served this object cut short or wrong
        for _ in self._retry_rounds():
            with self._send("GET", relpath, exclude=bad) as resp:
                if resp.status_code == 404:
                    raise NotFound(f"object {digest} missing from store")
                if resp.status_code != 200:
                    raise self._fail(resp, f"GET object {digest}")
                length = resp.headers.get("content-length")
                try:
                    if length and length.isdigit() and int(length) > cap:
                        raise CorruptObject(
                            f"object {digest}: {length} compressed bytes cannot hold the {limit} bytes promised"
                        )
                    if limit <= WHOLE_OBJECT_BYTES:
                        return whole(self._read_whole(resp, cap, digest, limit), limit)
                    return streamed(resp, limit, cap)
                except httpx.TransportError as exc:
                    last = f"{type(exc).__name__} {exc}".rstrip()
                    self._exclude(bad, resp)
                except CorruptObject:
                    # Wrong bytes are never accepted; but a cache or mirror may hold a bad copy
                    # (truncated, damaged) while another route has the right one: ask the next.
                    before = len(bad)
                    self._exclude(bad, resp)
                    if len(bad) == before:
                        raise
                    self._count("retries")
        raise StoreError(f"GET object {digest} failed after {self.tries} tries: {last}")

    def _read_whole(self, resp: httpx.Response, cap: int, digest: str, limit: int) -> bytes:
        """The whole compressed body, refusing to read past ``cap``, and stopping after the first
        chunk if the frame header already declares more than ``limit`` bytes."""
        source = self._body(resp, cap, digest)
        parts = [source.read()]
        try:
            declared = zstandard.frame_content_size(parts[0])
        except zstandard.ZstdError as exc:
            raise CorruptObject(f"object {digest} is not valid zstd data: {exc}") from None
        if declared > limit:
            raise CorruptObject(f"object {digest} is larger than the {limit} bytes the manifest promises")
        while chunk := source.read():
            parts.append(chunk)
        return b"".join(parts)

    def _body(self, resp: httpx.Response, cap: int, digest: str) -> _CappedSource:
        """The response body as a file-like source that counts bytes in and stops at ``cap``."""
        return _CappedSource(resp.iter_raw(_CHUNK), cap, digest, lambda n: self._count("object_bytes_in", n))

    def _decode(self, digest: str, limit: int, resp: httpx.Response, cap: int, sink: Any) -> int:
        return decode_stream(self._body(resp, cap, digest), digest, limit, sink, read_size=_CHUNK)

    def get_object(self, digest: str, max_size: int | None = None) -> bytes:
        def streamed(resp: httpx.Response, limit: int, cap: int) -> bytes:
            buf = io.BytesIO()
            self._decode(digest, limit, resp, cap, buf)
            return buf.getvalue()

        try:
            return self._get_object(
                digest, max_size, lambda frame, limit: decode_verified(frame, digest, limit), streamed
            )
        except NotFound:
            frame = self.packed_frame(digest, max_size)
            if frame is None:
                raise
            return decode_verified(frame, digest, max_size if max_size is not None else MAX_OBJECT_BYTES)

    def fetch_object_to(self, digest: str, dest: str, size: int | None = None) -> None:
        def streamed(resp: httpx.Response, limit: int, cap: int) -> None:
            with open(dest, "wb") as f:
                self._decode(digest, limit, resp, cap, f)

        try:
            self._get_object(digest, size, lambda frame, limit: decode_to_file(frame, digest, limit, dest), streamed)
        except NotFound:
            frame = self.packed_frame(digest, size)
            if frame is None:
                raise
            decode_to_file(frame, digest, size if size is not None else MAX_OBJECT_BYTES, dest)

    def read_object_raw(self, digest: str) -> bytes:
        """The stored (compressed) bytes of an object, unverified (publish copies them into packs)."""
        with self._send("GET", object_path(digest), primary_only=True) as resp:
            if resp.status_code == 404:
                frame = self.packed_frame(digest)
                if frame is None:
                    raise NotFound(f"object {digest} missing from store")
                return frame
            if resp.status_code != 200:
                raise self._fail(resp, f"GET object {digest}")
            return self._read_body(resp, object_path(digest))

    def fetch_file_to(self, relpath: str, dest: str, size: int, sha256_hex: str | None = None) -> None:
        """GET a whole immutable file (a pack) into ``dest``: one plain GET a cache can keep and
        serve to the next node. It must be exactly ``size`` bytes (and hash to ``sha256_hex`` if
        given); a route that serves it short or wrong is not asked again while another is left.
        The bytes count as ``object_bytes_in``. ``StoreError`` if no route delivers it."""
        ensure_relpath(relpath)
        last, bad = "", set[int]()
        with deadline.operation_deadline(self._transfer_deadline(size), f"GET {relpath}"):
            for _ in self._retry_rounds():
                with self._send("GET", relpath, exclude=bad) as resp:
                    if resp.status_code == 404:
                        raise NotFound(f"{relpath} missing from store {self.location}")
                    if resp.status_code != 200:
                        raise self._fail(resp, f"GET {relpath}")
                    h, n = hashlib.sha256(), 0
                    try:
                        with open(dest, "wb") as f:
                            for chunk in resp.iter_raw(_OUT_CHUNK):
                                n += len(chunk)
                                if n > size:
                                    break
                                h.update(chunk)
                                f.write(chunk)
                    except httpx.TransportError as exc:
                        last = f"{type(exc).__name__} {exc}".rstrip()
                        self._exclude(bad, resp)
                        continue
                    finally:
                        self._count("object_bytes_in", min(n, size))
                    if n == size and (sha256_hex is None or h.hexdigest() == sha256_hex):
                        return
                    last = f"{resp.request.url.host} sent {n if n <= size else 'more than ' + str(size)} bytes"
                    last += f" of {size}" if n != size else f" of {size} with another sha256"
                    self._exclude(bad, resp)
        raise StoreError(f"GET {relpath} failed after {self.tries} tries: {last}")

    def read_range(self, relpath: str, offset: int, length: int) -> bytes:
        """One ``Range: bytes=a-b`` GET (mirrors, retries, a lost body restarts the range).

        The bytes count as ``object_bytes_in``: ranges carry pack entries, i.e. object bytes.
        A server that ignores ``Range`` (answers 200) is a ``StoreError``: callers fall back.
        """
        ensure_relpath(relpath)
        if length <= 0:
            return b""
        last_byte = offset + length - 1
        headers = {"Range": f"bytes={offset}-{last_byte}"}
        with deadline.operation_deadline(self._transfer_deadline(length), f"GET {relpath} bytes {offset}-{last_byte}"):
            return self._range_rounds(relpath, offset, length, headers)

    def _range_rounds(self, relpath: str, offset: int, length: int, headers: dict[str, str]) -> bytes:
        last_byte = offset + length - 1
        last = ""
        for _ in self._retry_rounds():
            with self._send("GET", relpath, headers=headers) as resp:
                if resp.status_code == 404:
                    raise NotFound(f"{relpath} missing from store {self.location}")
                if resp.status_code == 416:
                    raise StoreError(f"{relpath} on {resp.request.url.host} is shorter than {offset + length} bytes")
                if resp.status_code != 206:
                    raise self._fail(resp, f"GET {relpath} bytes {offset}-{last_byte} (range)")
                if not resp.headers.get("content-range", "").startswith(f"bytes {offset}-{last_byte}/"):
                    raise StoreError(
                        f"GET {relpath}: {resp.request.url.host} answered another range "
                        f"({resp.headers.get('content-range')!r})"
                    )
                buf = bytearray()
                try:
                    for chunk in resp.iter_raw(_OUT_CHUNK):
                        buf += chunk
                        if len(buf) > length:
                            break
                except httpx.TransportError as exc:
                    last = f"{type(exc).__name__} {exc}".rstrip()
                    continue
                self._count("object_bytes_in", len(buf))
                if len(buf) != length:
                    raise StoreError(f"GET {relpath}: {len(buf)} bytes for a range of {length}")
                return bytes(buf)
        raise StoreError(f"GET {relpath} bytes {offset}-{last_byte} failed after {self.tries} tries: {last}")

    def file_size(self, relpath: str) -> int:
        ensure_relpath(relpath)
        with self._send("HEAD", relpath, primary_only=True) as resp:
            if resp.status_code == 404:
                return 0
            return int(resp.headers.get("content-length") or 0)

    def delete_file(self, relpath: str) -> int:
        """DELETE a derived file (pack, index, pack list) on the primary; return its size (0 if absent)."""
        ensure_relpath(relpath)
        with self._send("HEAD", relpath, primary_only=True) as resp:
            if resp.status_code == 404:
                return 0
            size = int(resp.headers.get("content-length") or 0)
        with self._send("DELETE", relpath, primary_only=True) as resp:
            if resp.status_code == 404:
                return 0
            if resp.status_code not in (200, 202, 204):
                raise self._fail(resp, f"DELETE {relpath}")
        self._forget(relpath)
        return size

    def delete_object(self, digest: str) -> int:
        try:
            size = self.object_stored_size(digest)
        except NotFound:
            return 0
        with self._send("DELETE", object_path(digest), primary_only=True) as resp:
            if resp.status_code == 404:
                return 0
            if resp.status_code not in (200, 202, 204):
                raise self._fail(resp, f"DELETE object {digest}")
        return size

    def iter_objects(self) -> Iterator[str]:
        """Every object digest, from the server's JSON autoindex (``autoindex_format json``)."""
        for sub in sorted(self._listing("objects", "directory")):
            if len(sub) != 2:
                continue
            for name in sorted(self._listing(f"objects/{sub}", "file")):
                d = "sha256:" + sub + name
                if len(name) == 62 and all(c in "0123456789abcdef" for c in name + sub):
                    yield d

    # -- metadata files ------------------------------------------------------------------
    def read_file(self, relpath: str) -> bytes | None:
        ensure_relpath(relpath)
        return self._read(relpath, conditional=_is_conditional(relpath))

    def read_file_each(self, relpath: str) -> list[tuple[str, bytes | None | StoreError]]:
        """``relpath`` as each mirror serves it, asked of all at once (each within the store's
        deadline): per mirror URL, in order, its bytes, ``None`` (404) or the ``StoreError`` of a
        mirror that did not answer. For mutable files (channel pointers): a node takes the newest
        valid one, so a lagging mirror cannot hold it back. Read plainly (no revalidation cache)."""
        ensure_relpath(relpath)

        def one(base: str) -> tuple[str, bytes | None | StoreError]:
            try:
                return base, self._read(relpath, conditional=False, base=base)
            except StoreError as exc:
                return base, exc

        with ThreadPoolExecutor(max_workers=len(self.urls)) as pool:
            return list(pool.map(one, self.urls))

    def read_file_at(self, base: str, relpath: str) -> bytes | None:
        """``relpath`` from mirror ``base`` only (one of ``urls``), read plainly."""
        ensure_relpath(relpath)
        return self._read(relpath, conditional=False, base=base)

    def _read(
        self, relpath: str, *, conditional: bool, primary_only: bool = False, base: str | None = None
    ) -> bytes | None:
        """GET a small file; with ``conditional``, revalidate a cached copy (304 -> cached bytes).

        Writers read with ``primary_only``: comparing against a lagging mirror would let a
        compare-and-swap overwrite a newer primary copy.
        """
        cached = None
        headers: dict[str, str] = {}
        if primary_only:
            headers["Cache-Control"] = "no-cache"  # writers compare against the origin's copy
        elif conditional or base is not None or relpath == "store.json":
            # Mutable: a cache may answer from a copy at most this old (the promote/rollback bound).
            headers["Cache-Control"] = f"max-age={self.mutable_max_age_s}"
        # Anything else a reader asks for by name is immutable (digest-named): a cache keeps it.
        if conditional:
            with self._lock:
                cached = self._cache.get(relpath)
            if cached is not None:
                if cached.etag:
                    headers["If-None-Match"] = cached.etag
                elif cached.last_modified:
                    headers["If-Modified-Since"] = cached.last_modified
        with self._send("GET", relpath, headers=headers, primary_only=primary_only, base=base) as resp:
            served_by = self._base_of(resp, relpath)
            if resp.status_code == 304 and cached is not None:
                if served_by == cached.base:
                    self._count("not_modified")
                    return cached.data
                # Validators from one mirror said nothing about another's copy: ask again, plainly.
                with self._lock:
                    self._cache.pop(relpath, None)
                return self._read(relpath, conditional=conditional)
            if resp.status_code == 404:
                return None
            if resp.status_code != 200:
                raise self._fail(resp, f"GET {relpath}")
            if self._older_than_asked(resp, headers):
                # A cache answered with a copy older than the max-age we asked for (caches may
                # ignore a client's max-age): ask it to revalidate with the origin, once.
                return self._read_revalidated(relpath, primary_only=primary_only, base=base)
            data = self._read_body(resp, relpath)
        if conditional:
            self._remember(relpath, served_by, resp, data)
        return data

    def _older_than_asked(self, resp: httpx.Response, headers: dict[str, str]) -> bool:
        """Whether a cache served a mutable file older (its ``Age``) than the ``max-age`` asked."""
        if not headers.get("Cache-Control", "").startswith("max-age="):
            return False
        age = resp.headers.get("age", "")
        return age.isdigit() and int(age) > self.mutable_max_age_s

    def _read_revalidated(self, relpath: str, *, primary_only: bool, base: str | None) -> bytes | None:
        """``relpath`` with ``Cache-Control: no-cache``: any cache on the way revalidates first."""
        with self._send(
            "GET", relpath, headers={"Cache-Control": "no-cache"}, primary_only=primary_only, base=base
        ) as resp:
            if resp.status_code == 404:
                return None
            if resp.status_code != 200:
                raise self._fail(resp, f"GET {relpath}")
            return self._read_body(resp, relpath)

    @staticmethod
    def _base_of(resp: httpx.Response, relpath: str) -> str:
        url = str(resp.request.url)
        return url[: len(url) - len(urllib.parse.quote(relpath))]

    def _read_body(self, resp: httpx.Response, relpath: str) -> bytes:
        chunks, total = [], 0
        try:
            for chunk in resp.iter_bytes(_CHUNK):
                total += len(chunk)
                if total > MAX_FILE_BYTES:
                    raise StoreError(f"{relpath} on {resp.request.url.host} is larger than {MAX_FILE_BYTES} bytes")
                chunks.append(chunk)
        except httpx.TransportError as exc:
            raise StoreError(f"GET {relpath}: connection lost ({type(exc).__name__})") from None
        return b"".join(chunks)

    def _remember(self, relpath: str, base: str, resp: httpx.Response, data: bytes) -> None:
        etag = resp.headers.get("etag")
        modified = resp.headers.get("last-modified")
        if not etag and not modified:
            return
        date = resp.headers.get("date")
        if modified and date:
            try:
                age = (
                    email.utils.parsedate_to_datetime(date) - email.utils.parsedate_to_datetime(modified)
                ).total_seconds()
            except (TypeError, ValueError):
                age = 0
            if age < _RACY_SECONDS:
                # Too fresh: a same-size rewrite within this second would keep these validators.
                with self._lock:
                    self._cache.pop(relpath, None)
                return
        with self._lock:
            self._cache[relpath] = _Cached(base, etag, modified, data)
            self._cache.move_to_end(relpath)
            while len(self._cache) > _CACHE_ENTRIES:
                self._cache.popitem(last=False)

    def write_file(self, relpath: str, data: bytes, *, overwrite: bool = False) -> None:
        """PUT a metadata file. Write-once unless ``overwrite``.

        Write-once is checked by reading first: two writers racing on the same new name can
        both succeed over WebDAV (the last PUT wins). Content-addressed names make that
        harmless for releases; channel history names are also guarded by ``compare_and_swap``.
        """
        ensure_relpath(relpath)
        if not overwrite:
            current = self._read(relpath, conditional=False, primary_only=True)
            if current == data:
                return
            if current is not None:
                raise Conflict(f"{relpath} already exists in the store with other content")
        self._put(relpath, data)
        self._forget(relpath)

    def _forget(self, relpath: str) -> None:
        with self._lock:
            self._cache.pop(relpath, None)

    #: How long a compare-and-swap claim (``locks/…/``) is honoured before another writer may take
    #: over: only a writer that died while holding one makes anybody wait (at most this long).
    claim_lease_s: float = 60.0

    def compare_and_swap(self, relpath: str, expected: bytes | None, new: bytes) -> None:
        """Compare-and-swap over WebDAV, serialised by a claim directory made with ``MKCOL``.

        nginx's WebDAV module ignores ``If-Match`` and ``If-None-Match`` on ``PUT`` (the test suite
        checks it), so a plain read-compare-PUT lets two writers both pass the comparison: both
        issue the same pointer version and the channel wedges. ``MKCOL`` is ``mkdir(2)`` on the
        server, which is atomic: of writers racing to create the same directory exactly one gets
        ``201``. A swap from ``expected`` therefore first creates
        ``locks/<path>.<digest of expected>.<k>/``; the creator re-reads the file (it must still
        be ``expected``), PUTs, reads back and removes its claim. Everybody else gets ``Conflict``
        (exit 3) and changes nothing. A claim older than ``claim_lease_s`` (by the server's clock:
        the listing's ``mtime`` against its ``Date``) was left by a dead writer and is superseded by
        claim ``k + 1`` (again one ``MKCOL``, so taking over is atomic too); a holder that needed
        more than half the lease gives up before its PUT. The server needs
        ``dav_methods PUT DELETE MKCOL``; without ``MKCOL`` the swap is refused with a
        ``StoreError`` saying so, and nothing is written.
        """
        ensure_relpath(relpath)
        if self._read(relpath, conditional=False, primary_only=True) != expected:
            raise Conflict(f"{relpath}: moved meanwhile")
        started = time.monotonic()
        claim = self._claim(relpath, expected)
        try:
            if self._read(relpath, conditional=False, primary_only=True) != expected:
                raise Conflict(f"{relpath}: moved meanwhile")
            if time.monotonic() - started > self.claim_lease_s / 2:
                raise Conflict(f"{relpath}: the update took longer than half its claim's lease; nothing changed")
            self._put(relpath, new)
            self._forget(relpath)
            if self._read(relpath, conditional=False, primary_only=True) != new:
                raise Conflict(f"{relpath}: another writer replaced it meanwhile")
        finally:
            self._unclaim(claim)

    def _mkcol(self, reldir: str) -> int:
        with self._send("MKCOL", reldir + "/", primary_only=True) as resp:
            return resp.status_code

    def _dir_exists(self, reldir: str) -> bool:
        with self._send("HEAD", reldir + "/", headers={"Cache-Control": "no-cache"}, primary_only=True) as resp:
            return resp.status_code == 200

    def _no_mkcol(self, relpath: str) -> StoreError:
        return StoreError(
            f"cannot update {relpath} on {self.urls[0]}: the server refuses MKCOL, which serialises "
            "writers over WebDAV (nginx ignores If-Match); add MKCOL to 'dav_methods' (see the README, "
            "'Racing writers'); nothing changed"
        )

    def _claims(self, prefix: str) -> list[tuple[int, float]]:
        """(k, age in seconds by the server's clock) of each ``locks/<prefix><k>/`` claim."""
        with self._send(
            "GET", "locks/", headers={"Accept": "application/json", "Cache-Control": "no-cache"}, primary_only=True
        ) as resp:
            if resp.status_code == 404:
                return []
            if resp.status_code != 200:
                raise self._fail(resp, "GET locks/")
            body = self._read_body(resp, "locks/")
            date = resp.headers.get("date")
        try:
            now = email.utils.parsedate_to_datetime(date).timestamp() if date else time.time()
            entries = json.loads(body)
        except (TypeError, ValueError, RecursionError):
            raise StoreError("cannot list locks/: the server's listing is not nginx JSON autoindex") from None
        out = []
        for e in entries if isinstance(entries, list) else []:
            name = e.get("name") if isinstance(e, dict) else None
            if not isinstance(name, str) or not name.startswith(prefix) or not name[len(prefix) :].isdigit():
                continue
            try:
                age = now - email.utils.parsedate_to_datetime(e.get("mtime")).timestamp()
            except (TypeError, ValueError):
                age = 0.0
            out.append((int(name[len(prefix) :]), age))
        return out

    def _claim(self, relpath: str, expected: bytes | None) -> str:
        """Create this writer's claim on the swap from ``expected`` (``Conflict`` if someone holds it)."""
        key = hashlib.sha256(b"absent" if expected is None else b"bytes:" + expected).hexdigest()[:16]
        prefix = f"{relpath.replace('/', '~')}.{key}."
        status = self._mkcol("locks")
        if status not in (201, 405):
            raise StoreError(f"MKCOL locks/: HTTP {status} from {self.urls[0]}")
        if status == 405 and not self._dir_exists("locks"):
            raise self._no_mkcol(relpath)
        k = 0
        claims = self._claims(prefix)
        if claims:
            k, age = max(claims)
            if age < self.claim_lease_s:
                raise Conflict(
                    f"{relpath}: another writer is updating it (its claim is {max(age, 0):.0f} s old, "
                    f"lease {self.claim_lease_s:.0f} s); nothing changed"
                )
            k += 1  # a dead writer's claim: supersede it, atomically again
        name = f"locks/{prefix}{k}"
        status = self._mkcol(name)
        if status == 201:
            return name
        if status == 405:
            # 405 is nginx's answer both to "exists" and to "MKCOL not allowed"; the winner may
            # already have removed its claim, so ask the server directly whether MKCOL works.
            if not self._dir_exists(name) and not self._mkcol_works():
                raise self._no_mkcol(relpath)
            raise Conflict(f"{relpath}: another writer claimed it at the same moment; nothing changed")
        raise StoreError(f"MKCOL {name}/: HTTP {status} from {self.urls[0]}")

    def _mkcol_works(self) -> bool:
        """Whether the server creates directories on ``MKCOL`` (a probe made and removed at once)."""
        probe = f"locks/.probe-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}"
        if self._mkcol(probe) != 201:
            return False
        self._unclaim(probe)
        return True

    def _unclaim(self, claim: str) -> None:
        """Remove a claim (best effort: a leftover one only delays others by its lease)."""
        with contextlib.suppress(StoreError), self._send("DELETE", claim + "/", primary_only=True):
            pass

    def _listing(self, reldir: str, kind: str) -> list[str]:
        """Names of entries of ``kind`` (``file``/``directory``) from nginx's JSON autoindex."""
        ensure_relpath(reldir)
        with self._send("GET", reldir + "/", headers={"Accept": "application/json"}) as resp:
            if resp.status_code == 404:
                return []
            if resp.status_code != 200:
                raise StoreError(
                    f"cannot list {reldir}/ on {resp.request.url.host}: HTTP {resp.status_code}; "
                    "the server must enable 'autoindex on; autoindex_format json;' for list and gc"
                )
            body = self._read_body(resp, reldir + "/")
        try:
            entries = json.loads(body)
            names = [e["name"] for e in entries if isinstance(e, dict) and e.get("type") == kind]
        except (ValueError, TypeError, KeyError, RecursionError):
            raise StoreError(
                f"cannot list {reldir}/: the server's listing is not nginx JSON autoindex; "
                "enable 'autoindex on; autoindex_format json;' for list and gc"
            ) from None
        return [n for n in names if isinstance(n, str) and not n.startswith(".") and "/" not in n]

    def list_files(self, reldir: str) -> list[str]:
        return sorted(self._listing(reldir, "file"))


__all__ = ["HttpStore", "compressed_bound", "MAX_OBJECT_BYTES", "MAX_FILE_BYTES"]
