"""Delivery through a real Squid (issue 14): nodes behind one site cache cost the origin one copy.

nginx runs the shipped origin config and Squid the shipped site-cache config (fixtures); node roots
reach the store through Squid (``proxies`` in their node.toml). The origin's cost is read from
nginx's access log (``$body_bytes_sent``), never from the nodes' own reports (those are checked
against it).
"""

from __future__ import annotations

import collections
import hashlib
import http.client
import http.server
import json
import random
import threading
import time
import urllib.parse
from pathlib import Path

from helpers import exported, hydrate, make_tree, promote, publish, run_console, tree_listing, trust_file

MUTABLE = ("index.json", "store.json")


def noise(seed: str, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


def depot(packages: int = 20, per: int = 10, size: int = 16 << 10, bumped: tuple[int, ...] = ()) -> dict:
    """``packages`` packages of ``per`` incompressible files, plus two large (loose) libraries;
    the packages in ``bumped`` get new contents (a version bump)."""
    files = {}
    for p in range(packages):
        tag = f"v2-{p}" if p in bumped else f"{p}"
        for i in range(per):
            files[f"pkg{p:02d}/src/f{i:02d}.jl"] = noise(f"{tag}/{i}", size + i)
    files["lib/libbig.so"] = noise("big", 600 << 10)
    files["lib/libother.so"] = noise("other", 400 << 10)
    return files


def node_via(tmp_path: Path, name: str, proxies: list[str], max_age: int | None = None) -> Path:
    root = tmp_path / name
    root.mkdir()
    conf = f"proxies = {json.dumps(proxies)}\n"
    if max_age is not None:
        conf += f"mutable_max_age_s = {max_age}\n"
    (root / "node.toml").write_text(conf)
    return root


def immutable(path: str) -> bool:
    rel = path.split("/depot/", 1)[-1]
    return not (rel in MUTABLE or (rel.startswith("channels/") and rel.count("/") == 1))


def stored_bytes(store: Path, digests: set[str]) -> int:
    return sum((store / "objects" / d[7:9] / d[9:]).stat().st_size for d in digests)


def digests_of(files: dict) -> set[str]:
    return {"sha256:" + hashlib.sha256(c).hexdigest() for c in files.values()}


def test_twenty_nodes_through_one_squid_cost_the_origin_one_hydrate(http_site, nginx_server, squid, tmp_path):
    rid = publish(http_site, make_tree(tmp_path / "v1", depot()))
    promote(http_site, rid)
    trust = trust_file(http_site)
    want = exported(http_site, rid, tmp_path / "export")
    mark = len(nginx_server.requests())
    hydrate(tmp_path / "direct", nginx_server.url, trust)
    one = sum(r.body_bytes for r in nginx_server.requests()[mark:])

    mark = len(nginx_server.requests())
    docs = []
    for i in range(20):  # one after another: each node finds what the ones before it left in the cache
        root = node_via(tmp_path, f"node{i:02d}", [squid.url])
        docs.append(json.loads(hydrate(root, nginx_server.url, trust).stdout))
        assert tree_listing(root / "current" / "production") == want
    origin = nginx_server.requests()[mark:]
    sent = sum(r.body_bytes for r in origin)
    assert sent <= 1.1 * one, (sent, one)
    per_path = collections.Counter(r.path for r in origin if immutable(r.path))
    assert per_path and max(per_path.values()) == 1, [p for p, n in per_path.items() if n > 1]
    # No byte range reached the origin: a default Squid does not keep 206 answers.
    assert 206 not in {r.status for r in origin}, sorted({(r.path, r.status) for r in origin})
    # The nodes' own accounting (X-Cache from Squid) agrees with the origin's log (a 404's error page
    # is left unread by the node).
    assert sum(d["routes"]["origin"]["bytes"] for d in docs) == sum(r.body_bytes for r in origin if r.status != 404)
    assert all(d["routes"]["proxy"]["bytes"] > 0.9 * one for d in docs[1:])
    assert all(d["routes"]["mirror"]["requests"] == 0 for d in docs)


def test_incremental_bump_through_squid_costs_the_changed_objects_once(http_site, nginx_server, squid, tmp_path):
    v1_files, v2_files = depot(), depot(bumped=(3, 7, 11))
    v1 = publish(http_site, make_tree(tmp_path / "v1", v1_files))
    promote(http_site, v1)
    trust = trust_file(http_site)
    # Bound 0: every node revalidates the pointer (the bump is seen at once, through the cache).
    roots = [node_via(tmp_path, f"node{i}", [squid.url], max_age=0) for i in range(4)]
    for root in roots:
        hydrate(root, nginx_server.url, trust)
    v2 = publish(http_site, make_tree(tmp_path / "v2", v2_files))
    promote(http_site, v2)
    new_files = digests_of(v2_files) - digests_of(v1_files)
    assert len(new_files) == 30
    changed = stored_bytes(nginx_server.root, new_files)
    want = exported(http_site, v2, tmp_path / "export")

    mark = len(nginx_server.requests())
    first = json.loads(hydrate(roots[0], nginx_server.url, trust).stdout)
    first_sent = sum(r.body_bytes for r in nginx_server.requests()[mark:])
    assert first["release"] == v2 and first["fetched_objects"] == 30
    assert first_sent <= 1.1 * changed, (first_sent, changed)
    mark = len(nginx_server.requests())
    for root in roots[1:]:
        doc = json.loads(hydrate(root, nginx_server.url, trust).stdout)
        assert doc["release"] == v2 and tree_listing(root / "current" / "production") == want
    rest = nginx_server.requests()[mark:]
    assert sum(r.body_bytes for r in rest) <= 0.02 * changed, [(r.path, r.status, r.body_bytes) for r in rest]
    assert all(not immutable(r.path) for r in rest), [r.path for r in rest if immutable(r.path)]


def test_rollback_is_visible_through_squid_within_the_bound(http_site, nginx_server, squid, tmp_path):
    """The origin lets caches keep a pointer 60 s (the shipped default); a node bounded at 2 s still
    sees a rollback within about 2 s, because it asks the cache for nothing older."""
    v1 = publish(http_site, make_tree(tmp_path / "v1", depot(packages=2)))
    v2 = publish(http_site, make_tree(tmp_path / "v2", depot(packages=2, bumped=(1,))))
    promote(http_site, v1)
    promote(http_site, v2)
    trust = trust_file(http_site)
    root = node_via(tmp_path, "node", [squid.url], max_age=2)
    assert json.loads(hydrate(root, nginx_server.url, trust).stdout)["release"] == v2  # now cached in Squid
    run_console(http_site, "rollback", "--channel", "production", "--to", v1, check=0)
    deadline = time.monotonic() + 2 + 15  # the bound, plus time for the hydrates themselves
    seen = []
    while time.monotonic() < deadline:
        seen.append(json.loads(hydrate(root, nginx_server.url, trust).stdout)["release"])
        if seen[-1] == v1:
            break
    assert seen[-1] == v1, (seen[:2], [(r.code, r.status, r.url[-40:]) for r in squid.requests()][-14:])
    assert tree_listing(root / "current" / "production") == exported(http_site, v1, tmp_path / "export")


class BadCache:
    """A forward proxy standing in for a broken site cache: ``truncate`` serves every object and pack
    cut short (claiming a cache hit); ``die_after`` answers that many requests, then drops the
    connection mid-body and stops listening (a proxy dying mid-hydrate)."""

    def __init__(self, truncate: bool = False, die_after: int | None = None) -> None:
        self.truncated = 0
        self.served = 0
        self.dead = threading.Event()
        cache = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "proxy-connection")}
                conn.request("GET", url.path, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                cache.served += 1
                dying = cache.die_after is not None and cache.served > cache.die_after
                cut = cache.truncate and resp.status == 200 and ("/objects/" in url.path or url.path.endswith(".pack"))
                if cut:
                    cache.truncated += 1
                    data = data[: len(data) // 2]
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length", "keep-alive"):
                        self.send_header(k, v)
                self.send_header("X-Cache", "HIT from bad-cache")
                self.send_header("Content-Length", str(len(data) * (2 if dying else 1)))
                self.end_headers()
                self.wfile.write(data)
                if dying:  # half a body, then gone
                    self.wfile.flush()
                    self.close_connection = True
                    cache.dead.set()
                    threading.Thread(target=cache.close, daemon=True).start()

        self.truncate, self.die_after = truncate, die_after
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_cache_serving_truncated_objects_is_passed_over(http_site, nginx_server, squid, tmp_path):
    rid = publish(http_site, make_tree(tmp_path / "v1", depot(packages=8)))
    promote(http_site, rid)
    bad = BadCache(truncate=True)
    try:
        root = node_via(tmp_path, "node", [bad.url, squid.url])
        doc = json.loads(hydrate(root, nginx_server.url, trust_file(http_site)).stdout)
    finally:
        bad.close()
    assert bad.truncated >= 3  # the pack and both large objects came cut short from the first proxy
    assert doc["release"] == rid
    assert tree_listing(root / "current" / "production") == exported(http_site, rid, tmp_path / "export")


def test_a_proxy_dying_mid_hydrate_fails_over_to_the_second(http_site, nginx_server, squid, tmp_path):
    rid = publish(http_site, make_tree(tmp_path / "v1", depot(packages=8)))
    promote(http_site, rid)
    dying = BadCache(die_after=6)
    try:
        root = node_via(tmp_path, "node", [dying.url, squid.url])
        doc = json.loads(hydrate(root, nginx_server.url, trust_file(http_site)).stdout)
    finally:
        if not dying.dead.is_set():
            dying.close()
    assert dying.dead.is_set() and dying.served == 7
    assert doc["release"] == rid and doc["routes"]["proxy"]["requests"] >= 7
    assert tree_listing(root / "current" / "production") == exported(http_site, rid, tmp_path / "export")
