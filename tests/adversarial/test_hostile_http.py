"""A hostile or broken HTTP server (issue 12, item 5 and the server classes of DESIGN §2).

Every case runs against ``fixtures.hostile_http.HostileServer`` serving a real published store:
drips (in the headers, in the body, of metadata and of objects), endless bodies, lengths that lie
and ranges that lie. The reader must end each one with one clear error and its exit code, within
the overall deadline (``[http] deadline_s``), never hang and never trust wrong bytes. A drip
gives up after 20 s and then finishes the real body, so a reader without a deadline makes these
tests fail rather than hang.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import CorruptObject, StoreError
from core.model.digest import digest_bytes
from core.store.base import object_path
from core.store.deadline import DeadlinePassed
from core.store.http import HttpStore

from fixtures.hostile_http import HostileServer
from helpers import hydrate, make_tree, promote, publish, run_console, tree_listing, trust_file


@pytest.fixture
def published(tmp_path: Path, hostile_http: HostileServer) -> tuple[HostileServer, Path, str]:
    """A site publishing into the hostile server's directory, one release promoted to production."""
    site = tmp_path / "site"
    run_console(site, "init", "--store", str(hostile_http.root), check=0)
    tree = make_tree(tmp_path / "tree", {"bin/tool": b"#!/bin/sh\necho hi\n", "lib/data.bin": b"x" * 200_000})
    rid = publish(site, tree)
    promote(site, rid)
    return hostile_http, trust_file(site), rid


def _node(tmp_path: Path, **config: object) -> Path:
    root = tmp_path / "node"
    root.mkdir()
    (root / "node.toml").write_text("".join(f"{k} = {v!r}\n" for k, v in config.items()))
    return root


def _an_object(server: HostileServer) -> str:
    """The digest of the largest object in the store (the 200 kB file's)."""
    files = sorted((server.root / "objects").rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else 0)
    return "sha256:" + files[-1].parent.name + files[-1].name


# -- drips: every operation has an overall deadline -------------------------------------------------
@pytest.mark.parametrize("kind", ["drip_body", "drip_headers"])
@pytest.mark.parametrize("where", ["channels/", "objects/"])
def test_a_dripping_server_cannot_hold_a_hydrate(
    tmp_path: Path, published: tuple[HostileServer, Path, str], kind: str, where: str
) -> None:
    server, trust, _ = published
    server.fault(where, kind, interval=0.1)
    root = _node(tmp_path, timeout_s=0.5, deadline_s=0.8, retries=0)
    proc = hydrate(root, server.url, trust, check=1)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "deadline" in lines[0] and "[http] deadline_s" in lines[0], lines[0]
    assert not (root / "current").exists() or not any((root / "current").iterdir())


def test_the_deadline_covers_retries_and_backoff(published: tuple[HostileServer, Path, str]) -> None:
    server, _, _ = published
    server.fault("index.json", "drip_body", interval=0.25)
    with HttpStore(server.url, tries=50, backoff=(0.5,), deadline_s=1.5, timeout=1.0) as store:
        with pytest.raises(DeadlinePassed, match=r"GET index.json: not finished within its 1.5 s deadline"):
            store.read_file("index.json")


def test_an_object_deadline_grows_with_its_promised_size(published: tuple[HostileServer, Path, str]) -> None:
    """A slow but honest transfer of a big object is not cut at ``deadline_s``."""
    server, _, _ = published
    digest = _an_object(server)
    with HttpStore(server.url, deadline_s=0.5) as store:
        assert store._transfer_deadline(200_000) > 0.5
        assert digest_bytes(store.get_object(digest, 200_000)) == digest


# -- bodies that never end or lie about their length ------------------------------------------------
def test_an_endless_metadata_body_is_cut_at_the_file_bound(published: tuple[HostileServer, Path, str]) -> None:
    server, _, _ = published
    server.fault("index.json", "endless", give_up=60)
    with HttpStore(server.url) as store:
        with pytest.raises(StoreError, match=r"index.json on 127.0.0.1 is larger than 67108864 bytes"):
            store.read_file("index.json")


@pytest.mark.parametrize("fill", [b"\0", b"\x28\xb5\x2f\xfd"])
def test_an_endless_object_body_is_cut_at_its_promised_size(
    published: tuple[HostileServer, Path, str], fill: bytes
) -> None:
    server, _, _ = published
    digest = _an_object(server)
    server.fault(object_path(digest), "endless", fill=fill, give_up=60)
    with HttpStore(server.url) as store, pytest.raises(CorruptObject, match=digest):
        store.get_object(digest, 200_000)
    assert server.hits[object_path(digest)] == 1


def test_a_body_shorter_than_its_length_is_an_error_after_retries(published: tuple[HostileServer, Path, str]) -> None:
    server, _, _ = published
    digest = _an_object(server)
    server.fault(object_path(digest), "short")
    with HttpStore(server.url, tries=2, backoff=(0,)) as store, pytest.raises(StoreError, match="failed after 2 tries"):
        store.get_object(digest, 200_000)
    assert server.hits[object_path(digest)] == 2


def test_bytes_past_the_content_length_are_never_read(published: tuple[HostileServer, Path, str]) -> None:
    server, _, _ = published
    digest = _an_object(server)
    server.fault(object_path(digest), "long")
    with HttpStore(server.url) as store:
        assert digest_bytes(store.get_object(digest, 200_000)) == digest


# -- ranges that lie --------------------------------------------------------------------------------
def test_a_range_answer_for_another_range_is_refused(published: tuple[HostileServer, Path, str]) -> None:
    server, _, _ = published
    digest = _an_object(server)
    server.fault(object_path(digest), "range_lie", header=True)
    with HttpStore(server.url) as store, pytest.raises(StoreError, match="answered another range"):
        store.read_range(object_path(digest), 100, 50)


def test_range_bytes_that_lie_never_reach_a_node_image(
    tmp_path: Path, published: tuple[HostileServer, Path, str]
) -> None:
    """Wrong bytes under a right ``Content-Range`` fail the entry's hash: the node either refuses
    (exit 1, one line) or falls back to whole objects; its image is then exactly the tree."""
    server, trust, _ = published
    server.fault("packs/", "range_lie")
    root = _node(tmp_path)
    proc = hydrate(root, server.url, trust, check=None)
    assert any(k.startswith("packs/") for k in server.hits), "the node read no pack: nothing was tested"
    if proc.returncode:
        assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        return
    assert tree_listing(root / "current" / "production") == tree_listing(tmp_path / "tree")
