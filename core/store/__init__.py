"""Depot stores: pick the backend from a location string (path, ``file://`` or ``http(s)://``).

``open_store`` is the one entry point the rest of the code uses, so a site can move its store
from a local disk to a web server (or add mirrors) by editing one configuration value.
"""
from __future__ import annotations

import urllib.parse
from pathlib import Path

from core.errors import BadInput
from core.store.base import Store
from core.store.local import LocalStore

__all__ = ["Store", "LocalStore", "HttpStore", "open_store"]


def __getattr__(name: str):
    """``HttpStore`` loads httpx on first use only: local-store verbs start faster without it."""
    if name == "HttpStore":
        from core.store.http import HttpStore

        return HttpStore
    raise AttributeError(name)


def open_store(location: str, *, proxies: list[str] | None = None, create: bool = False) -> Store:
    """Open (or with ``create``, create) the store at ``location``.

    * a path or ``file:///path`` -> ``LocalStore``;
    * an ``http(s)://`` URL -> ``HttpStore``; a comma-separated list of URLs is a list of
      mirrors tried in order (the first is the one published to). ``proxies`` (tried in
      order) apply to HTTP only; without them the ``HTTP(S)_PROXY``/``NO_PROXY`` env applies.
    """
    location = (location or "").strip()
    if not location:
        raise BadInput("no store location given")
    parts = [p.strip() for p in location.split(",") if p.strip()]
    schemes = {urllib.parse.urlsplit(p).scheme.lower() for p in parts}
    if schemes <= {"http", "https"}:
        from core.store.http import HttpStore

        return HttpStore.create(parts, proxies=proxies) if create else HttpStore.open(parts, proxies=proxies)
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
    return LocalStore.create(path) if create else LocalStore.open(path)
