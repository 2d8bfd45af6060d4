"""HttpStore against a real nginx (WebDAV PUT/DELETE, JSON autoindex) on loopback.

The store root nginx serves is also opened as a LocalStore: the two backends must read each
other's writes byte for byte. Faults come from a dead port (bound, never listening: connect
is refused at once) and a stdlib fault proxy that answers 503 before forwarding to nginx.
"""

from __future__ import annotations

import os
import socket
import time

import pytest

from core.errors import BadInput, Conflict, CorruptObject, NotFound, StoreError
from core.model.digest import digest_bytes
from core.store import HttpStore, LocalStore, open_store
from core.store.base import object_path
from core.store.http import _CappedSource, compressed_bound

from fixtures.nginx import NginxServer

NO_WAIT: dict = {"sleep": lambda s: None}


@pytest.fixture
def dead_url():
    """A URL whose port is bound but not listening: every connect is refused immediately."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{s.getsockname()[1]}/depot/"
    s.close()


@pytest.fixture
def store(nginx_server: NginxServer):
    with HttpStore(nginx_server.url, **NO_WAIT) as st:
        yield st


def paths_of(server: NginxServer, method: str | None = None) -> list[tuple[str, str, int]]:
    return [(r.method, r.path, r.status) for r in server.requests() if method in (None, r.method)]


def compressible(n: int) -> bytes:
    """``n`` random bytes over a 4-letter alphabet: zstd shrinks them about 3-4x, quickly."""
    table = bytes(b"ACGT"[i % 4] for i in range(256))
    return os.urandom(n).translate(table)


# -- objects: round trips and interchangeability with LocalStore ----------------------------
def test_put_get_round_trip_matches_local_store_bytes(nginx_server, store, tmp_path):
    data = b"hello depot\n" * 1000
    d = digest_bytes(data)
    written = store.put_object(d, data)
    assert written > 0
    assert store.put_object(d, data) == 0  # second time: a HEAD, no PUT
    obj = "/depot/" + object_path(d)
    assert [(m, s) for m, p, s in paths_of(nginx_server) if p == obj] == [("HEAD", 404), ("PUT", 201), ("HEAD", 200)]
    puts = paths_of(nginx_server, "PUT")
    assert puts == [("PUT", "/depot/" + object_path(d), 201)]

    local = LocalStore.open(nginx_server.root)
    assert local.get_object(d) == data
    peer = LocalStore.create(tmp_path / "peer")
    peer.put_object(d, data)
    on_server = (nginx_server.root / object_path(d)).read_bytes()
    assert on_server == (tmp_path / "peer" / object_path(d)).read_bytes()
    assert written == len(on_server) == store.object_stored_size(d)

    other = b"written by the local backend"
    od = digest_bytes(other)
    local.put_object(od, other)
    assert store.has_object(od)
    assert store.get_object(od) == other
    assert store.get_object(od, max_size=len(other)) == other
    dest = tmp_path / "out"
    store.fetch_object_to(od, str(dest), size=len(other))
    assert dest.read_bytes() == other


def test_big_file_streamed_put_matches_local_store(nginx_server, store, tmp_path):
    src = tmp_path / "big.bin"
    src.write_bytes(compressible(9 << 20))  # above the 8 MiB threshold: streamed, chunked PUT
    from core.model.digest import hash_file

    d, size = hash_file(src)
    sent = store.put_object_file(d, str(src))
    peer = LocalStore.create(tmp_path / "peer")
    peer.put_object_file(d, str(src))
    expected = (tmp_path / "peer" / object_path(d)).read_bytes()
    assert (nginx_server.root / object_path(d)).read_bytes() == expected
    assert sent == len(expected)
    assert store.put_object_file(d, str(src)) == 0
    out = tmp_path / "back.bin"
    store.fetch_object_to(d, str(out), size=size)
    assert out.read_bytes() == src.read_bytes()


def test_missing_object_is_not_found(store, tmp_path):
    d = digest_bytes(b"never stored")
    assert store.has_object(d) is False
    assert store.missing_objects([d, d]) == {d}
    with pytest.raises(NotFound):
        store.get_object(d)
    with pytest.raises(NotFound):
        store.fetch_object_to(d, str(tmp_path / "x"))
    with pytest.raises(NotFound):
        store.object_stored_size(d)
    assert store.delete_object(d) == 0


def test_corrupt_objects_are_refused(nginx_server, store, tmp_path):
    import zstandard

    d = digest_bytes(b"the promised bytes")
    path = nginx_server.root / object_path(d)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(zstandard.ZstdCompressor(level=3).compress(b"other bytes!!!!!!!"))
    with pytest.raises(CorruptObject, match="hash to"):
        store.get_object(d)
    with pytest.raises(CorruptObject, match="hash to"):
        store.fetch_object_to(d, str(tmp_path / "x"), size=18)
    path.write_bytes(b"not zstd at all")
    with pytest.raises(CorruptObject, match="not valid zstd"):
        store.get_object(d)
    assert CorruptObject("x").exit_code == 1


def test_object_larger_than_promised_stops_early(nginx_server, store, tmp_path):
    data = compressible(32 << 20)
    d = digest_bytes(data)
    store.put_object(d, data)
    stored = store.object_stored_size(d)
    promised = 16 << 20
    assert stored < compressed_bound(promised)  # passes the Content-Length bound: caught while streaming
    dest = tmp_path / "x"
    before = store.stats["object_bytes_in"]
    with pytest.raises(CorruptObject, match="larger than the 16777216 bytes"):
        store.fetch_object_to(d, str(dest), size=promised)
    read = store.stats["object_bytes_in"] - before
    assert not dest.exists()  # read in one piece (promise <= WHOLE_OBJECT_BYTES): nothing written unverified
    assert read < stored * 3 // 4  # stopped near the promise (about half), not at the end
    with pytest.raises(CorruptObject):
        store.get_object(d, max_size=promised)


def test_compressed_body_beyond_bound_is_refused_unread(nginx_server, store):
    data = os.urandom(1 << 20)  # incompressible
    d = digest_bytes(data)
    store.put_object(d, data)
    before = store.stats["object_bytes_in"]
    with pytest.raises(CorruptObject, match="cannot hold the 1000 bytes"):
        store.get_object(d, max_size=1000)
    assert store.stats["object_bytes_in"] == before
    # Bodies without Content-Length are cut by the reader itself.
    src = _CappedSource(iter([b"a" * 600, b"b" * 600]), 1000, d, lambda n: None)
    assert src.read(600) == b"a" * 600
    with pytest.raises(CorruptObject, match="exceeds 1000 bytes"):
        src.read(600)


def test_fetch_many_in_parallel(store, tmp_path):
    blobs = [f"object {i}\n".encode() * (i + 1) for i in range(20)]
    for b in blobs:
        store.put_object(digest_bytes(b), b)
    done = []
    jobs = [(digest_bytes(b), str(tmp_path / f"o{i}"), len(b)) for i, b in enumerate(blobs)]
    assert store.fetch_many(jobs, max_workers=4, on_done=lambda d, p: done.append(d)) == 20
    assert sorted(done) == sorted(digest_bytes(b) for b in blobs)
    assert all((tmp_path / f"o{i}").read_bytes() == b for i, b in enumerate(blobs))
    missing = digest_bytes(b"absent")
    with pytest.raises(NotFound):
        store.fetch_many(jobs[:3] + [(missing, str(tmp_path / "m"), 1)], max_workers=2)


def test_delete_and_iter_objects(nginx_server, store):
    local = LocalStore.open(nginx_server.root)
    digests = []
    for i in range(5):
        b = f"blob {i}".encode()
        digests.append(digest_bytes(b))
        store.put_object(digests[-1], b)
    assert list(store.iter_objects()) == list(local.iter_objects()) == sorted(digests)
    size = store.object_stored_size(digests[0])
    assert store.delete_object(digests[0]) == size
    assert not (nginx_server.root / object_path(digests[0])).exists()
    assert list(store.iter_objects()) == sorted(digests[1:])


# -- metadata files -------------------------------------------------------------------------
def test_list_files_via_json_autoindex(nginx_server, store):
    local = LocalStore.open(nginx_server.root)
    rid = digest_bytes(b"payload")
    store.write_file(f"releases/{rid[7:]}.json", b"{}")
    local.write_file("releases/notes.txt", b"x")
    (nginx_server.root / "releases" / ".tmp-abc").write_bytes(b"partial")
    store.compare_and_swap("channels/production.json", None, b"v1")
    store.write_file("channels/production/1.json", b"v1")
    assert store.list_files("releases") == local.list_files("releases") == sorted([f"{rid[7:]}.json", "notes.txt"])
    assert store.list_release_ids() == [rid]
    assert store.list_channels() == ["production"]
    assert store.list_files("channels/production") == ["1.json"]
    assert store.list_files("nothing-here") == []


def test_list_without_json_autoindex_is_a_clear_store_error(nginx_server):
    with HttpStore(nginx_server.origin + "/plain/", **NO_WAIT) as plain:
        assert plain.read_file("store.json") is not None  # static reads still work
        with pytest.raises(StoreError, match="autoindex_format json"):
            plain.list_files("releases")


def test_write_file_is_write_once(store, nginx_server):
    store.write_file("releases/a.json", b"one")
    store.write_file("releases/a.json", b"one")  # same bytes: fine
    with pytest.raises(Conflict):
        store.write_file("releases/a.json", b"two")
    store.write_file("index.json", b"i1", overwrite=True)
    store.write_file("index.json", b"i2", overwrite=True)
    assert (nginx_server.root / "index.json").read_bytes() == b"i2"
    assert store.read_file("missing.json") is None
    with pytest.raises(BadInput):
        store.read_file("../etc/passwd")


def test_compare_and_swap(nginx_server, store):
    local = LocalStore.open(nginx_server.root)
    rel = "channels/production.json"
    store.compare_and_swap(rel, None, b"version 1")
    with pytest.raises(Conflict) as exc:
        store.compare_and_swap(rel, None, b"version X")
    assert exc.value.exit_code == 3
    store.compare_and_swap(rel, b"version 1", b"version 2")
    # Another writer (here the local backend) moves it: our stale swap changes nothing.
    local.compare_and_swap(rel, b"version 2", b"version 3")
    with pytest.raises(Conflict):
        store.compare_and_swap(rel, b"version 2", b"version 4")
    assert local.read_file(rel) == b"version 3"
    assert store.read_file(rel) == b"version 3"


def test_conditional_get_answers_304_for_unchanged_file(nginx_server, store):
    index = nginx_server.root / "index.json"
    index.write_bytes(b'{"releases": []}')
    old = time.time() - 3600
    os.utime(index, (old, old))
    assert store.read_file("index.json") == b'{"releases": []}'
    assert store.read_file("index.json") == b'{"releases": []}'
    gets = [r for r in nginx_server.requests() if r.path == "/depot/index.json"]
    assert [(g.status, g.if_none_match != "-") for g in gets] == [(200, False), (304, True)]
    assert gets[1].body_bytes == 0
    assert store.stats["not_modified"] == 1

    index.write_bytes(b'{"releases": ["x"]}')
    os.utime(index, (old + 60, old + 60))
    assert store.read_file("index.json") == b'{"releases": ["x"]}'
    assert nginx_server.requests()[-1].status == 200


def test_fresh_file_is_refetched_not_revalidated(nginx_server, store):
    """A same-size rewrite in the same second keeps nginx's ETag: such copies are never trusted."""
    ch = nginx_server.root / "channels" / "beta.json"
    now = time.time()
    ch.write_bytes(b"pointer A")
    os.utime(ch, (now, now))
    assert store.read_file("channels/beta.json") == b"pointer A"
    ch.write_bytes(b"pointer B")
    os.utime(ch, (now, now))
    assert store.read_file("channels/beta.json") == b"pointer B"
    gets = [r for r in nginx_server.requests() if r.path == "/depot/channels/beta.json"]
    assert [(g.status, g.if_none_match) for g in gets] == [(200, "-"), (200, "-")]


# -- mirrors, retries, proxies --------------------------------------------------------------
def test_dead_mirror_is_skipped_then_retried_after_down_time(nginx_server, dead_url):
    now = [1000.0]
    data = b"mirrored"
    LocalStore.open(nginx_server.root).put_object(digest_bytes(data), data)
    with HttpStore([dead_url, nginx_server.url], clock=lambda: now[0], down_for=30, **NO_WAIT) as st:
        assert st.get_object(digest_bytes(data)) == data
        assert st.stats["connect_errors"] == 1
        assert st.read_file("store.json") is not None
        assert st.has_object(digest_bytes(data))
        assert st.stats["connect_errors"] == 1  # the dead mirror was not tried again
        now[0] += 31
        assert st.get_object(digest_bytes(data)) == data
        assert st.stats["connect_errors"] == 2
        # Writes go to the primary only: a dead primary fails the write, never a mirror.
        with pytest.raises(StoreError, match="cannot connect"):
            st.write_file("releases/w.json", b"w")
        with pytest.raises(StoreError, match="cannot connect"):
            st.compare_and_swap("channels/beta.json", None, b"w")
        with pytest.raises(StoreError, match="cannot connect"):
            st.put_object(digest_bytes(b"w"), b"w")
    assert not (nginx_server.root / "releases" / "w.json").exists()
    assert not (nginx_server.root / "channels" / "beta.json").exists()


def test_open_store_with_mirror_list(nginx_server, dead_url, tmp_path):
    st = open_store(f"{dead_url},{nginx_server.url}")
    try:
        assert isinstance(st, HttpStore)
        assert st.urls == [dead_url, nginx_server.url]
        assert st.list_files("channels") == []
    finally:
        st.close()


def test_retry_on_5xx_with_backoff(nginx_server, fault_proxy):
    data = b"flaky"
    LocalStore.open(nginx_server.root).put_object(digest_bytes(data), data)
    fp = fault_proxy(2)
    sleeps: list[float] = []
    with HttpStore(fp.url(), sleep=sleeps.append) as st:
        assert st.get_object(digest_bytes(data)) == data
    assert sleeps == [0.2, 0.4]
    assert fp.seen == 3

    fp3 = fault_proxy(3)
    with HttpStore(fp3.url(), sleep=sleeps.append) as st:
        with pytest.raises(StoreError, match="failed after 3 tries: .*HTTP 503") as exc:
            st.read_file("store.json")
    assert exc.value.exit_code == 1
    with HttpStore(nginx_server.origin + "/broken/", **NO_WAIT) as st:
        with pytest.raises(StoreError, match="HTTP 500"):
            st.has_object(digest_bytes(data))


def test_proxy_list_fails_over_in_order(nginx_server, fault_proxy, dead_url):
    fp = fault_proxy(0)
    dead_proxy = dead_url.rsplit("/depot/", 1)[0]
    with HttpStore(nginx_server.url, proxies=[dead_proxy, fp.url("")], **NO_WAIT) as st:
        assert st.read_file("store.json") is not None
        assert st.read_file("store.json") is not None
    assert st.stats["connect_errors"] == 1
    assert fp.seen == 2


def test_proxy_environment_is_honoured(nginx_server, fault_proxy, monkeypatch):
    fp = fault_proxy(0)
    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTP_PROXY", fp.url(""))
    with HttpStore(nginx_server.url, **NO_WAIT) as st:
        assert st.read_file("store.json") is not None
    assert fp.seen == 1
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with HttpStore(nginx_server.url, **NO_WAIT) as st:
        assert st.read_file("store.json") is not None
    assert fp.seen == 1


# -- open_store -----------------------------------------------------------------------------
def test_open_store_dispatch(nginx_server, tmp_path):
    created = open_store(str(tmp_path / "new"), create=True)
    assert isinstance(created, LocalStore)
    assert isinstance(open_store(f"file://{tmp_path / 'new'}"), LocalStore)
    with pytest.raises(NotFound):
        open_store(str(tmp_path / "absent"))
    st = open_store(nginx_server.url)
    assert isinstance(st, HttpStore)
    st.close()
    with pytest.raises(NotFound, match="store.json missing"):
        open_store(nginx_server.url + "nothing/")
    fresh = open_store(nginx_server.url + "sub/", create=True)
    fresh.close()
    assert LocalStore.open(nginx_server.root / "sub").read_file("store.json") is not None
    for bad in ("ftp://host/x", f"{nginx_server.url},/local/path", ""):
        with pytest.raises(BadInput):
            open_store(bad)
    with pytest.raises(BadInput, match="invalid proxy URL"):
        open_store(nginx_server.url, proxies=["not a proxy"])


def test_nginx_store_fixture_serves_a_store(nginx_store):
    url, root, access_log = nginx_store
    with HttpStore.open(url, **NO_WAIT) as st:
        assert st.read_file("store.json") == (root / "store.json").read_bytes()
    assert access_log.exists()
