"""The shipped configs for serving a store: an nginx origin and a Squid site cache.

``console serve-config nginx`` and ``console serve-config squid`` print these; the tests run
nginx and Squid with exactly this text (tests/fixtures/nginx.py, tests/fixtures/squid.py), so
what the README recommends is what is tested.

Why these headers (README, "Serving the store"):

* digest-named paths (``objects/``, ``packs/``, ``releases/``, channel history
  ``channels/<name>/<version>.json``) never change once written: ``Cache-Control: public,
  max-age=31536000, immutable``, so a cache serves them to every later node without asking the
  origin again;
* the mutable ones (``channels/<name>.json``, ``index.json``, ``store.json``) get ``max-age`` of
  the bound (default 60 s) and ``must-revalidate``: a promote or rollback reaches every node
  through a cache within that bound. Nodes also ask for at most that age themselves (request
  ``Cache-Control: max-age``, node setting ``mutable_max_age_s``), so a cache configured with
  longer heuristics cannot hide a new pointer for longer;
* everything else (listings, ``locks/``) ``no-store``.
"""

from __future__ import annotations

from pathlib import Path

#: The bound on how stale a mutable file (channel pointer, index) may be served by a cache.
DEFAULT_MUTABLE_MAX_AGE_S = 60
IMMUTABLE = "public, max-age=31536000, immutable"
#: Largest object a site cache should keep (packs are at most 32 MiB; large loose objects can be
#: bigger: they are what a fleet fetches most bytes of).
SQUID_MAX_OBJECT_MB = 4096


def mutable_cache_control(max_age_s: int) -> str:
    return f"public, max-age={int(max_age_s)}, must-revalidate" if max_age_s > 0 else "no-cache"


def nginx_config(
    root: str | Path = "/srv/depot",
    *,
    prefix: str = "/depot/",
    listen: str = "80",
    mutable_max_age_s: int = DEFAULT_MUTABLE_MAX_AGE_S,
    webdav: bool = False,
    extra_locations: str = "",
) -> str:
    """An nginx ``map`` (for ``Cache-Control``) and ``server`` block serving the store at ``root``
    under ``prefix``; include both in the ``http`` block. ``webdav`` adds ``PUT``/``DELETE``/
    ``MKCOL`` for publishing (restrict it to the publishing hosts)."""
    root = str(Path(root)).rstrip("/") or "/"
    prefix = "/" + prefix.strip("/") + "/"
    p = prefix.replace(".", r"\.")
    dav = (
        "\n        # Publishing over WebDAV (console publish to this URL): allow only the publishers.\n"
        "        dav_methods PUT DELETE MKCOL;\n"
        "        create_full_put_path on;\n"
        "        dav_access user:rw group:r all:r;\n"
        "        client_max_body_size 0;"
        if webdav
        else ""
    )
    extra = "".join("\n    " + line if line else "\n" for line in extra_locations.strip("\n").splitlines())
    return f"""\
# depot store origin: include in nginx's http {{}} block (console serve-config nginx).
# Digest-named paths never change: caches keep them. Mutable ones: at most {mutable_max_age_s} s stale.
map $uri $depot_cache_control {{
    default                                   "no-store";
    ~^{p}(objects|packs|releases)/.*[^/]$     "{IMMUTABLE}";
    ~^{p}channels/[^/]+/[0-9]+\\.json$        "{IMMUTABLE}";
    ~^{p}(index|store)\\.json$               "{mutable_cache_control(mutable_max_age_s)}";
    ~^{p}channels/[^/]+\\.json$              "{mutable_cache_control(mutable_max_age_s)}";
}}
server {{
    listen {listen};
    server_name _;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    location {prefix} {{
        alias {root}/;
        # Ranges (pack entries) are served by nginx's static module out of the box.
        max_ranges 1;
        etag on;
        add_header Cache-Control $depot_cache_control always;
        # Listings for gc and verify over HTTP.
        autoindex on;
        autoindex_format json;{dav}
    }}{extra}
}}
"""


def squid_config(
    *,
    http_port: str = "3128",
    cache_dir: str | None = "/var/spool/squid",
    cache_dir_mb: int = 20000,
    cache_mem_mb: int = 1024,
    work: str | None = None,
    nodes: str = "10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 fc00::/7",
    hostname: str | None = None,
) -> str:
    """Squid settings for a site cache in front of the origin (Squid 5).

    ``cache_dir`` None keeps the cache in memory only; ``work`` puts pid and logs in one directory
    (tests); ``nodes`` are the source networks allowed to use the cache. Ranges: nodes fetch packs whole when they need most of them and loose
    objects otherwise (never uncacheable ranges through a cache), so ``range_offset_limit``
    stays at its default (``0``: a range a client still asks for is passed through, never turned
    into a whole-object fetch from the origin).
    """
    lines = [
        "# depot site cache (console serve-config squid): Squid 5.",
        f"http_port {http_port}",
        "# Who may use the cache: the node networks.",
        f"acl depot_nodes src {nodes}",
        "http_access allow depot_nodes",
        "http_access deny all",
        "# Store objects and packs are immutable and up to a few GiB (large loose objects).",
        f"maximum_object_size {SQUID_MAX_OBJECT_MB} MB",
        "maximum_object_size_in_memory 64 MB",
        f"cache_mem {cache_mem_mb} MB",
        f"cache_dir ufs {cache_dir} {cache_dir_mb} 16 256" if cache_dir else "# memory only: no cache_dir",
        "# Many nodes asking for the same object at once: one request to the origin.",
        "collapsed_forwarding on",
        "# Ranges: never widen a client's range into a whole-object origin fetch (nodes read",
        "# packs whole when they need most of them); ranges of a cached object are served from it.",
        "range_offset_limit 0",
        "# Keep downloading an object another client asked for even if that client goes away.",
        "quick_abort_min -1 KB",
        "# 404s (an object not yet published) are not remembered.",
        "negative_ttl 0 seconds",
        "# Honour the origin's Cache-Control (immutable / max-age); no heuristics for the store.",
        "refresh_pattern . 0 20% 4320",
        "# Tell nodes which answers came from the cache (X-Cache, Via): node hydrate --json counts them.",
        "via on",
    ]
    if hostname:
        lines.append(f"visible_hostname {hostname}")
    if work is not None:
        lines += [
            f"pid_filename {work}/squid.pid",
            f"access_log stdio:{work}/access.log squid",
            f"cache_log {work}/cache.log",
            "cache_store_log none",
            f"coredump_dir {work}",
            "shutdown_lifetime 0 seconds",
        ]
    return "\n".join(lines) + "\n"


__all__ = ["DEFAULT_MUTABLE_MAX_AGE_S", "IMMUTABLE", "mutable_cache_control", "nginx_config", "squid_config"]
