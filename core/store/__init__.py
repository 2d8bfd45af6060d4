"""Depot stores: pick the backend from a location string (path, ``file://`` or ``http(s)://``).

``open_store`` is the one entry point the rest of the code uses, so a site can move its store
from a local disk to a web server (or add mirrors) by editing one configuration value.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import BadInput
from core.store.base import Store

if TYPE_CHECKING:  # imported lazily at run time (see __getattr__)
    from core.store.http import HttpStore
    from core.store.local import LocalStore

__all__ = ["Store", "LocalStore", "HttpStore", "open_store"]

#: Per-request timeout and retries of every HTTP store opened here: the defaults of console.toml's
#: ``[http] timeout_s``/``retries`` and of the node config's keys of the same names.
DEFAULT_TIMEOUT_S = 30
DEFAULT_RETRIES = 3
#: Overall deadline of one HTTP operation, retries included (``[http] deadline_s``): a server
#: that drips bytes cannot hold a reader for longer (``core.store.deadline``).
DEFAULT_DEADLINE_S = 300.0
#: The longest an HTTP connect may take whatever ``timeout_s`` says: a dead mirror costs this
#: once (then it is skipped for a while), not a whole read timeout.
CONNECT_TIMEOUT_S = 5.0


def __getattr__(name: str) -> type[HttpStore] | type[LocalStore]:
    """The backends load on first use: ``HttpStore`` (httpx) for HTTP stores only, ``LocalStore``
    (zstandard) only where a store is opened, so node verbs that read the node's own root and
    the constants above start without either."""
    if name == "HttpStore":
        from core.store.http import HttpStore

        return HttpStore
    if name == "LocalStore":
        from core.store.local import LocalStore

        return LocalStore
    raise AttributeError(name)


def open_store(
    location: str,
    *,
    proxies: list[str] | None = None,
    create: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
    deadline_s: float = DEFAULT_DEADLINE_S,
    mutable_max_age_s: int = 60,
    layout: str = "loose",
) -> Store:
    """Open (or with ``create``, create) the store at ``location``; a created store has ``layout``
    ("loose", or "packed": ``core.store.locator``, local stores only).

    * a path or ``file:///path`` -> ``LocalStore``;
    * an ``http(s)://`` URL -> ``HttpStore``; a comma-separated list of URLs is a list of
      mirrors tried in order (the first is the one published to). ``proxies`` (tried in
      order) apply to HTTP only; without them the ``HTTP(S)_PROXY``/``NO_PROXY`` env applies.
      ``timeout_s`` bounds each read, write and pool wait of a request (a connect waits at most
      ``CONNECT_TIMEOUT_S``); ``retries`` is how many more rounds over the mirrors follow a
      connection error, timeout or 5xx answer, with ``HttpStore``'s backoff between them;
      ``deadline_s`` bounds a whole operation, retries included (objects get more by size).
    """
    location = (location or "").strip()
    if not location:
        raise BadInput("no store location given")
    parts = [p.strip() for p in location.split(",") if p.strip()]
    schemes = {urllib.parse.urlsplit(p).scheme.lower() for p in parts}
    if schemes <= {"http", "https"}:
        if create and layout != "loose":
            raise BadInput(f"layout {layout!r} is for a local store: give a path, or use layout 'loose'")
        from core.store.http import HttpStore

        # isort: split
        import httpx  # only after core.store.http, which loads it without its optional parts

        kwargs = {
            "proxies": proxies,
            "timeout": httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s)),
            "tries": retries + 1,
            "deadline_s": deadline_s,
            "mutable_max_age_s": mutable_max_age_s,
        }
        return HttpStore.create(parts, **kwargs) if create else HttpStore.open(parts, **kwargs)
    if len(parts) > 1 and schemes & {"http", "https"}:
        raise BadInput(f"store location {location!r} mixes URLs and paths; mirrors must all be http(s) URLs")
    if location.startswith("file:"):
        parsed = urllib.parse.urlsplit(location)
        if parsed.netloc not in ("", "localhost"):
            raise BadInput(f"file URL {location!r} names a remote host; mount it and give the path")
        path = Path(urllib.parse.unquote(parsed.path))
    elif "://" in location:
        raise BadInput(f"unsupported store location {location!r}: use a path, file://, http:// or https://")
    else:
        path = Path(location).expanduser()
    from core.store.local import LocalStore

    return LocalStore.create(path, layout) if create else LocalStore.open(path)
