"""``console serve-config nginx|squid``: print the shipped configs for serving a store over HTTP
(README, "Serving the store"); the tests run nginx and Squid with exactly this text."""

from __future__ import annotations

import argparse
from pathlib import Path

from console.context import Context, Output


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from core.site.serve_config import DEFAULT_MUTABLE_MAX_AGE_S

    p = sub.add_parser("serve-config", parents=[common], help="print the nginx origin or Squid site-cache config")
    kinds = p.add_subparsers(dest="server", required=True, metavar="nginx|squid")
    n = kinds.add_parser("nginx", parents=[common], help="an nginx map + server block serving the store")
    n.add_argument("--root", metavar="STORE", default="/srv/depot", help="the store directory (default /srv/depot)")
    n.add_argument("--prefix", default="/depot/", help="URL path the store is served under (default /depot/)")
    n.add_argument("--listen", default="80", help="nginx listen argument (default 80)")
    n.add_argument(
        "--max-age",
        type=int,
        default=DEFAULT_MUTABLE_MAX_AGE_S,
        metavar="S",
        help=f"most seconds a cache may serve a channel pointer or index.json unrevalidated "
        f"(default {DEFAULT_MUTABLE_MAX_AGE_S}; 0: no-cache)",
    )
    n.add_argument("--webdav", action="store_true", help="also accept PUT/DELETE/MKCOL (publishing to this server)")
    n.set_defaults(handler=cmd_nginx)
    s = kinds.add_parser("squid", parents=[common], help="Squid settings for a site cache in front of the origin")
    s.add_argument("--port", default="3128", help="http_port (default 3128)")
    s.add_argument("--cache-dir", default="/var/spool/squid", help="cache_dir path (default /var/spool/squid)")
    s.add_argument("--cache-dir-mb", type=int, default=20000, metavar="MB", help="disk cache size (default 20000)")
    s.add_argument("--cache-mem-mb", type=int, default=1024, metavar="MB", help="memory cache size (default 1024)")
    s.add_argument(
        "--nodes",
        default="10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 fc00::/7",
        help="source networks allowed to use the cache (space-separated)",
    )
    s.set_defaults(handler=cmd_squid)


def cmd_nginx(ctx: Context) -> Output:
    from core.site.serve_config import nginx_config

    a = ctx.args
    root = str(Path(a.root).expanduser().resolve()) if a.root != "/srv/depot" else a.root
    text = nginx_config(root, prefix=a.prefix, listen=a.listen, mutable_max_age_s=a.max_age, webdav=a.webdav)
    return Output({"server": "nginx", "config": text}, text.rstrip("\n"))


def cmd_squid(ctx: Context) -> Output:
    from core.site.serve_config import squid_config

    a = ctx.args
    text = squid_config(
        http_port=a.port,
        cache_dir=a.cache_dir or None,
        cache_dir_mb=a.cache_dir_mb,
        cache_mem_mb=a.cache_mem_mb,
        nodes=a.nodes,
    )
    return Output({"server": "squid", "config": text}, text.rstrip("\n"))
