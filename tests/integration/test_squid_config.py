"""The shipped serving configs (``console serve-config nginx|squid``), as the tests' nginx and Squid run them:
digest-named paths immutable (a cache answers the second request without asking the origin), mutable ones
bounded by ``max-age``."""

from __future__ import annotations

import json

import httpx

from core.site.serve_config import IMMUTABLE, nginx_config, squid_config

from helpers import run_console


def test_serve_config_verbs_print_the_generated_configs(tmp_path):
    store = tmp_path / "store"
    out = run_console(None, "serve-config", "nginx", "--root", str(store), "--max-age", "7", check=0).stdout
    assert out == nginx_config(str(store.resolve()), mutable_max_age_s=7)
    assert f'"{IMMUTABLE}"' in out and '"public, max-age=7, must-revalidate"' in out
    assert "sendfile on;" in out and "dav_methods" not in out
    dav = run_console(None, "serve-config", "nginx", "--webdav", check=0).stdout
    assert "dav_methods PUT DELETE MKCOL;" in dav and "alias /srv/depot/;" in dav
    doc = json.loads(run_console(None, "serve-config", "squid", "--json", check=0).stdout)
    assert doc["config"] == squid_config()
    assert "collapsed_forwarding on" in doc["config"] and "range_offset_limit 0" in doc["config"]


def test_origin_headers_and_one_origin_fetch_through_squid(nginx_server, squid):
    root = nginx_server.root
    (root / "objects" / "ab").mkdir(parents=True, exist_ok=True)
    (root / "objects" / "ab" / ("c" * 62)).write_bytes(b"x" * 5000)
    (root / "channels").mkdir(exist_ok=True)
    (root / "channels" / "prod.json").write_bytes(b"{}")
    obj = nginx_server.url + "objects/ab/" + "c" * 62
    direct = httpx.get(obj)
    assert direct.headers["cache-control"] == IMMUTABLE
    assert httpx.get(nginx_server.url + "channels/prod.json").headers["cache-control"] == (
        "public, max-age=60, must-revalidate"
    )
    assert httpx.get(nginx_server.url + "objects/").headers["cache-control"] == "no-store"
    start = len(nginx_server.requests())
    with httpx.Client(proxy=squid.url) as client:
        first, second = client.get(obj), client.get(obj)
        ranged = client.get(obj, headers={"Range": "bytes=10-19"})
    assert first.content == second.content == b"x" * 5000 and ranged.status_code == 206 and ranged.content == b"x" * 10
    assert (
        "MISS" in first.headers["x-cache"] and "HIT" in second.headers["x-cache"] and "HIT" in ranged.headers["x-cache"]
    )
    origin = [r for r in nginx_server.requests()[start:] if "/objects/ab/" in r.path]
    assert [(r.status, r.body_bytes) for r in origin] == [(200, 5000)]
