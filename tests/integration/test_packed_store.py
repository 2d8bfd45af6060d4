"""The packed store layout (``console init --layout packed``, ``core.store.locator``): trees and
small file objects live only in the release packs, and every reader still gets them by digest,
verified: verify, diff, export, gc, hydrate from the directory and through a real nginx.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

from core.store.base import PACKED_SCHEMA, store_meta
from core.store.locator import Locator, Lookup, encode_lookup, lookup_path
from core.store.packs import PACK_MAX_OBJECT

from helpers import exported, hydrate, make_tree, promote, publish, run_console, run_json, tree_listing, trust_file


def noise(seed: str, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


def depot(root: Path, variant: int = 0) -> Path:
    """40 small files in 8 packages (file 5 differs per ``variant``), one large file, a link, an empty dir."""
    files: dict[str, bytes | str] = {
        f"pkg{i % 8}/src/f{i:02d}.jl": f"module F{i} # {variant if i == 5 else 0}\n" * (i + 1) for i in range(40)
    }
    files["artifacts/big.bin"] = noise("big", PACK_MAX_OBJECT + 1)
    return make_tree(root, files, links={"pkg0/latest": "src"}, empty_dirs=("logs",))


def packed_site(path: Path, *extra: str) -> Path:
    run_console(path, "init", "--layout", "packed", *extra, check=0)
    return path


def loose_files(store: Path) -> list[str]:
    return sorted(f"{p.parent.name}{p.name}" for p in (store / "objects").glob("*/*"))


def pack_entries(store: Path, rid: str) -> tuple[str, list[list]]:
    (pack_id,) = json.loads((store / "packs" / "lists" / f"{rid[7:]}.json").read_text())["images"]["x86_64"]
    return pack_id[7:], json.loads((store / "packs" / f"{pack_id[7:]}.idx").read_text())["entries"]


def test_publish_writes_only_large_objects_loose_and_every_reader_finds_the_rest(tmp_path):
    site = packed_site(tmp_path / "site")
    store = site / "store"
    meta = json.loads((store / "store.json").read_text())
    assert meta == {"schema": PACKED_SCHEMA, "digest": "sha256", "compression": "zstd", "layout": "packed"}
    doc = run_json(site, "publish", "--name", "demo", "--image", f"x86_64={depot(tmp_path / 'v1')}")
    v1 = doc["release_id"]
    assert doc["new_objects"] == 41
    big = "sha256:" + hashlib.sha256(noise("big", PACK_MAX_OBJECT + 1)).hexdigest()
    assert loose_files(store) == [big[7:]]  # no tree, no small file under objects/
    pack_hex, entries = pack_entries(store, v1)
    assert sorted(os.listdir(store / "packs")) == [f"{pack_hex}.idx", f"{pack_hex}.pack", f"{pack_hex}.sidx", "lists"]
    assert (
        sum(e[3] == "file" for e in entries) == 40 and sum(e[3] == "tree" for e in entries) == 19
    )  # root, 8 pkg, 8 src, artifacts, logs
    assert run_json(site, "verify", "--deep")["ok"] is True

    v2 = publish(site, depot(tmp_path / "v2", variant=1))
    out = run_console(site, "diff", v1, v2, "--files", check=0).stdout
    assert "1 modified" in out and "M pkg5/src/f05.jl" in out
    # The second release's pack holds every small object it names, the 39 unchanged ones included:
    old_files = {e[0] for e in entries if e[3] == "file"}
    new_files = {e[0] for e in pack_entries(store, v2)[1] if e[3] == "file"}
    assert (len(new_files), len(new_files & old_files)) == (40, 39)
    assert exported(site, v2, tmp_path / "out") == tree_listing(tmp_path / "v2")
    assert loose_files(store) == [big[7:]]


def test_a_release_needs_no_other_release_pack_and_gc_keeps_the_live_ones(tmp_path):
    site = packed_site(tmp_path / "site")
    store = site / "store"
    v1 = publish(site, depot(tmp_path / "v1"))
    v2 = publish(site, depot(tmp_path / "v2", variant=1))
    old_hex, _ = pack_entries(store, v1)
    new_hex, _ = pack_entries(store, v2)
    (store / "releases" / f"{v1[7:]}.json").unlink()  # v1 gone (as if removed by hand): its packs are orphans
    rep = run_json(site, "gc")
    assert sorted(rep["orphan_pack_files"]) == sorted(
        [f"packs/{old_hex}.{ext}" for ext in ("idx", "pack", "sidx")] + [f"packs/lists/{v1[7:]}.json"]
    )
    assert sorted(os.listdir(store / "packs")) == [f"{new_hex}.idx", f"{new_hex}.pack", f"{new_hex}.sidx", "lists"]
    assert run_json(site, "verify", "--deep")["ok"] is True  # v2's objects all sit in v2's own pack
    assert exported(site, v2, tmp_path / "out") == tree_listing(tmp_path / "v2")


def test_gc_refuses_when_a_live_release_pack_list_is_unreadable(tmp_path):
    site = packed_site(tmp_path / "site")
    store = site / "store"
    rid = publish(site, depot(tmp_path / "v1"))
    before = sorted(os.listdir(store / "packs"))
    (store / "packs" / "lists" / f"{rid[7:]}.json").write_text("{not json")
    proc = run_console(site, "gc", check=2)
    assert proc.stderr == f"console: gc refused: pack list packs/lists/{rid[7:]}.json of a live release is unreadable\n"
    assert sorted(os.listdir(store / "packs")) == before


def promoted_with_victim(tmp_path: Path) -> tuple[Path, Path, str, list[list], list]:
    """A packed site with ``depot`` v1 promoted: (site, store, pack hex, pack entries, the first file entry)."""
    site = packed_site(tmp_path / "site")
    store = site / "store"
    rid = publish(site, depot(tmp_path / "v1"))
    promote(site, rid)
    pack_hex, entries = pack_entries(store, rid)
    return site, store, pack_hex, entries, next(e for e in entries if e[3] == "file")


def test_a_corrupt_pack_entry_is_caught_by_verify_and_by_hydrate(tmp_path):
    site, store, pack_hex, entries, victim = promoted_with_victim(tmp_path)
    pack = store / "packs" / f"{pack_hex}.pack"
    pack.chmod(0o644)
    with open(pack, "r+b") as f:  # the last byte of the frame: its checksum or content, never valid
        f.seek(victim[1] + victim[2] - 1)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    doc = run_json(site, "verify", "--deep", check=1)
    assert doc["ok"] is False and victim[0] in json.dumps(doc)
    proc = hydrate(tmp_path / "node", str(store), trust_file(site), check=1)
    assert victim[0] in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "node" / "current" / "production").exists()


def test_hydrate_from_a_packed_store_over_nginx_reads_no_loose_small_object(tmp_path, nginx_server):
    root = nginx_server.root
    (root / "store.json").chmod(0o644)
    (root / "store.json").write_bytes(store_meta("packed"))  # the served store, still empty, made packed
    site = tmp_path / "site"
    run_console(site, "init", "--store", str(root), check=0)
    v1 = publish(site, depot(tmp_path / "v1"))
    promote(site, v1)
    trust = trust_file(site)
    node = tmp_path / "node"
    start = len(nginx_server.requests())
    doc = json.loads(hydrate(node, nginx_server.url, trust).stdout)
    assert doc["release"] == v1
    assert tree_listing(node / "current" / "production") == tree_listing(tmp_path / "v1")
    v2 = publish(site, depot(tmp_path / "v2", variant=1))
    promote(site, v2)
    doc = json.loads(hydrate(node, nginx_server.url, trust).stdout)
    assert (doc["release"], doc["fetched_objects"]) == (v2, 1)
    assert tree_listing(node / "current" / "production") == tree_listing(tmp_path / "v2")
    requests = nginx_server.requests()[start:]
    assert [r.path for r in requests if r.status >= 400 and "/channels/" not in r.path] == []  # (no rollout: 404)
    loose = [r.path for r in requests if "/objects/" in r.path]
    assert len(loose) == 1  # the large object, once: trees and small files came from the packs


def test_layout_errors_are_one_line(tmp_path):
    proc = run_console(tmp_path / "a", "init", "--layout", "flat", check=2)
    assert "invalid choice: 'flat'" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_console(tmp_path / "b", "init", "--layout", "packed", "--store", "http://127.0.0.1:9/store", check=2)
    assert proc.stderr == ("console: layout 'packed' is for a local store: give a path, or use layout 'loose'\n")
    run_console(tmp_path / "c", "init", check=0)
    proc = run_console(tmp_path / "d", "init", "--layout", "packed", "--store", str(tmp_path / "c" / "store"), check=2)
    assert proc.stderr == (
        f"console: the store at {tmp_path / 'c' / 'store'} already exists with layout 'loose'; "
        "a layout is chosen at creation\n"
    )
    future = tmp_path / "c" / "store" / "store.json"
    future.chmod(0o644)
    future.write_text('{"schema": "depot-store/3"}')
    proc = run_console(tmp_path / "c", "releases", check=2)
    assert proc.stderr == (
        f"console: unsupported store schema at {tmp_path / 'c' / 'store'} (store.json says 'depot-store/3', "
        "expected depot-store/1 or depot-store/2)\n"
    )


def test_lookup_finds_every_entry_and_nothing_else():
    entries = [("sha256:" + random.Random(i).randbytes(32).hex(), i * 100, 50 + i) for i in range(2000)]
    lk = Lookup("sha256:" + "ab" * 32, encode_lookup(entries))
    for d, off, n in entries:
        assert lk.find(bytes.fromhex(d[7:])) == (off, n)
    assert lk.find(b"\0" * 32) is None and lk.find(b"\xff" * 32) is None


def test_a_malformed_lookup_file_is_ignored_not_trusted():
    good = "sha256:" + "11" * 32
    files = {
        lookup_path("sha256:" + "aa" * 32): b"DSIDX1\0\0" + b"\xff" * 100,  # wrong length
        lookup_path("sha256:" + "bb" * 32): encode_lookup([(good, 0, 10)]),
    }
    loc = Locator(lambda: ["sha256:" + "aa" * 32, "sha256:" + "bb" * 32], files.get)
    assert loc.locate(good) == ("sha256:" + "bb" * 32, 0, 10)
    assert loc.locate("sha256:" + "22" * 32) is None
    assert loc.present([good, "sha256:" + "22" * 32]) == {good}


def test_a_site_publishes_into_and_reads_a_packed_store_over_http(tmp_path, nginx_server):
    root = nginx_server.root
    (root / "store.json").chmod(0o644)
    (root / "store.json").write_bytes(store_meta("packed"))
    site = tmp_path / "site"
    run_console(site, "init", "--store", nginx_server.url, check=0)  # publishes by WebDAV
    v1 = publish(site, depot(tmp_path / "v1"))
    v2 = publish(site, depot(tmp_path / "v2", variant=1))
    assert len(loose_files(root)) == 1 and (root / "packs" / f"{pack_entries(root, v2)[0]}.sidx").is_file()
    assert run_json(site, "verify", "--deep")["ok"] is True  # small objects read by range from the packs
    assert "M pkg5/src/f05.jl" in run_console(site, "diff", v1, v2, "--files", check=0).stdout
    assert exported(site, v2, tmp_path / "out") == tree_listing(tmp_path / "v2")


def test_a_publish_cut_before_its_release_leaves_only_orphan_packs_that_a_rerun_and_gc_handle(tmp_path, monkeypatch):
    import pytest

    from core.site.publish import publish as core_publish
    from core.site.site import open_site
    from core.store.local import LocalStore

    site = packed_site(tmp_path / "site")
    store = site / "store"
    src = depot(tmp_path / "v1")
    real_write = LocalStore.write_file

    def cut(self, relpath, data, *, overwrite=False):
        if relpath.startswith("releases/"):
            raise KeyboardInterrupt  # the process dies here: packs, lookups and the pack list are written
        return real_write(self, relpath, data, overwrite=overwrite)

    monkeypatch.setattr(LocalStore, "write_file", cut)
    s = open_site(site)
    with pytest.raises(KeyboardInterrupt):
        core_publish(s, "demo", {"x86_64": src})
    s.close()
    monkeypatch.undo()
    assert list((store / "releases").iterdir()) == []
    (orphan,) = [n[:-5] for n in os.listdir(store / "packs") if n.endswith(".pack")]
    (cut_list,) = os.listdir(store / "packs" / "lists")
    assert run_json(site, "verify", "--deep")["ok"] is True
    rid = publish(site, src)  # reuses the orphan pack's frames; its own pack is the same bytes
    assert pack_entries(store, rid)[0] == orphan
    rep = run_json(site, "gc")
    cut_orphans = [] if cut_list == f"{rid[7:]}.json" else [f"packs/lists/{cut_list}"]  # same second: same id
    assert (rep["orphan_pack_files"], rep["deleted"]) == (cut_orphans, 0)  # the pack itself is shared
    assert sorted(os.listdir(store / "packs" / "lists")) == [f"{rid[7:]}.json"]
    assert run_json(site, "verify", "--deep")["ok"] is True
    assert exported(site, rid, tmp_path / "out") == tree_listing(src)


def test_a_lookup_file_that_lies_about_a_length_reads_nothing_and_fails_cleanly(tmp_path):
    site, store, pack_hex, entries, victim = promoted_with_victim(tmp_path)
    forged = [(d, off, (1 << 32) - 1 if d == victim[0] else n) for d, off, n, _ in entries]  # a 4 GiB "frame"
    (store / "packs" / f"{pack_hex}.sidx").write_bytes(encode_lookup(forged))
    doc = run_json(site, "verify", "--deep", check=1)
    assert doc["ok"] is False and victim[0] in json.dumps(doc)
    # A node reads the pack through the JSON index, not the lookup file: it is not misled at all.
    hydrate(tmp_path / "node", str(store), trust_file(site))
    assert tree_listing(tmp_path / "node" / "current" / "production") == tree_listing(tmp_path / "v1")


def test_a_packed_release_publishes_into_cvmfs_as_the_same_tree(tmp_path, cvmfs_repo):
    site = packed_site(tmp_path / "site")
    cvmfs_repo.configure(site)
    rid = publish(site, depot(tmp_path / "v1"))
    rows = run_json(site, "cvmfs", "publish", rid, "--repo", cvmfs_repo.name)
    assert [(r["state"], r["release"]) for r in rows] == [("published", rid)]
    image = cvmfs_repo.depot / "releases" / rid[7:] / "x86_64"
    assert tree_listing(image) == tree_listing(tmp_path / "v1")


def test_verify_checks_each_release_finds_its_objects_in_its_own_packs(tmp_path):
    site = packed_site(tmp_path / "site")
    store = site / "store"
    v1 = publish(site, depot(tmp_path / "v1"))
    v2 = publish(site, depot(tmp_path / "v2", variant=1))
    assert run_json(site, "verify")["ok"] is True
    lists = store / "packs" / "lists"
    (lists / f"{v1[7:]}.json").chmod(0o644)
    # v1's pack list naming v2's pack: every read still succeeds (the locator finds the objects),
    # but gc of v2 would take some of v1's objects with it.
    doc = json.loads((lists / f"{v2[7:]}.json").read_text())
    (lists / f"{v1[7:]}.json").write_text(json.dumps({**doc, "release": v1}))
    bad = run_json(site, "verify", check=1)["problems"]
    assert [(p["release"], p["kind"]) for p in bad] == [(v1, "not-in-own-packs")]
    assert bad[0]["detail"].startswith("4 object(s) only elsewhere")  # f05 and the 3 trees above it
    (lists / f"{v1[7:]}.json").unlink()
    bad = run_json(site, "verify", check=1)["problems"]
    assert [(p["release"], p["kind"]) for p in bad] == [(v1, "pack-list")]
