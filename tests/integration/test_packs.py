"""Object packs (``core.store.packs``): written at publish, read by hydrate with a few range requests,
verified like loose objects, swept by gc, and never required (a store without packs still hydrates).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

from core.store.base import object_path
from core.store.packs import GAP_FRACTION, PACK_MAX_OBJECT, PackEntry, plan_spans

from helpers import exported, hydrate, make_tree, promote, publish, run_json, tree_listing, trust_file


def pack_of(store: Path, rid: str) -> tuple[str, list[list]]:
    """(pack hex, index entries) of the release's only x86_64 pack."""
    doc = json.loads((store / "packs" / "lists" / f"{rid[7:]}.json").read_text())
    assert doc["schema"] == "depot-packs/1" and doc["release"] == rid and list(doc["images"]) == ["x86_64"]
    (pack_id,) = doc["images"]["x86_64"]
    index = json.loads((store / "packs" / f"{pack_id[7:]}.idx").read_text())
    assert index["pack"] == pack_id and index["size"] == (store / "packs" / f"{pack_id[7:]}.pack").stat().st_size
    return pack_id[7:], index["entries"]


def noise(seed: str, n: int) -> bytes:
    """``n`` incompressible bytes (zstd stores them raw, so entry lengths are predictable)."""
    return random.Random(seed).randbytes(n)


def many_files(n: int = 300, variant: int = 0, changed_every: int = 0) -> dict[str, bytes]:
    files = {}
    for i in range(n):
        tag = f"{i}:{variant}" if changed_every and i % changed_every == 0 else f"{i}"
        files[f"pkg{i % 20:02d}/src/f{i:03d}.jl"] = noise(tag, 2000 + i)
    return files


def on_v1_with_v2_promoted(site: Path, store: str, tmp_path: Path) -> tuple[str, str, Path, Path]:
    """A node hydrated at v1 (300 files), then v2 (every third file changed) promoted:
    (v1, v2, trust file, node root)."""
    v1 = publish(site, make_tree(tmp_path / "v1", many_files()))
    promote(site, v1)
    trust = trust_file(site)
    root = tmp_path / "node"
    hydrate(root, store, trust)
    v2 = publish(site, make_tree(tmp_path / "v2", many_files(variant=1, changed_every=3)))
    promote(site, v2)
    return v1, v2, trust, root


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_publish_writes_a_pack_of_trees_then_small_files(site_dir, tmp_path):
    big = noise("big", PACK_MAX_OBJECT + 1)
    files = {
        "a/one.txt": b"one\n",
        "a/dup.txt": b"one\n",
        "b/c/two.txt": b"two\n",
        "tool": b"#!/bin/sh\n",
        "big.bin": big,
        "empty": b"",
    }
    tree = make_tree(tmp_path / "t", files, executables=("tool",))
    rid = publish(site_dir, tree)
    store = site_dir / "store"
    pack_hex, entries = pack_of(store, rid)
    pack = (store / "packs" / f"{pack_hex}.pack").read_bytes()
    assert hashlib.sha256(pack).hexdigest() == pack_hex
    kinds = [e[3] for e in entries]
    assert kinds == ["tree"] * 4 + ["file"] * 4  # /, a, b, b/c; then one.txt (once), two.txt, tool, empty
    small = {digest_of(c) for c in files.values() if len(c) <= PACK_MAX_OBJECT}
    assert {e[0] for e in entries if e[3] == "file"} == small and digest_of(big) not in {e[0] for e in entries}
    offset = 0
    for digest, off, length, _ in entries:  # contiguous, each entry exactly the loose object's bytes
        assert off == offset
        assert pack[off : off + length] == (store / object_path(digest)).read_bytes()
        offset += length
    assert offset == len(pack)

    # Republished unchanged (another label: another release), it gets the same content-addressed pack.
    again = publish(site_dir, tree, label="again")
    assert again != rid and pack_of(store, again)[0] == pack_hex
    assert sorted(os.listdir(store / "packs")) == [f"{pack_hex}.idx", f"{pack_hex}.pack", "lists"]


def test_hydrate_over_nginx_reads_the_pack_with_few_requests(http_site, nginx_server, tmp_path):
    big = noise("big", PACK_MAX_OBJECT * 2)
    files = dict(many_files(), **{"lib/big.so": big})
    rid = publish(http_site, make_tree(tmp_path / "v1", files, executables=("pkg00/src/f000.jl",)))
    promote(http_site, rid)
    root = tmp_path / "node"
    start = len(nginx_server.requests())
    doc = json.loads(hydrate(root, nginx_server.url, trust_file(http_site)).stdout)
    requests = nginx_server.requests()[start:]
    assert doc["fetched_objects"] == 301 and doc["fetched_trees"] == 42  # root, lib, 20 pkgs, 20 src
    assert len(requests) < 20, [(r.method, r.path) for r in requests]
    object_gets = [r.path for r in requests if "/objects/" in r.path]
    assert object_gets == ["/depot/" + object_path(digest_of(big))]  # only the large object is loose
    pack_hex, _ = pack_of(nginx_server.root, rid)
    ranges = [r for r in requests if r.path == f"/depot/packs/{pack_hex}.pack"]
    assert ranges and {r.status for r in ranges} == {206}
    assert sum(r.body_bytes for r in ranges) == (nginx_server.root / "packs" / f"{pack_hex}.pack").stat().st_size
    assert tree_listing(root / "current" / "production") == exported(http_site, rid, tmp_path / "export")


def test_incremental_hydrate_reads_only_missing_entries(http_site, nginx_server, tmp_path):
    v1, v2, trust, root = on_v1_with_v2_promoted(http_site, nginx_server.url, tmp_path)
    old = {e[0] for e in pack_of(nginx_server.root, v1)[1]}
    pack_hex, entries = pack_of(nginx_server.root, v2)
    missing = [e for e in entries if e[0] not in old]
    assert sum(e[3] == "file" for e in missing) == 100
    start = len(nginx_server.requests())
    doc = json.loads(hydrate(root, nginx_server.url, trust).stdout)
    assert (doc["fetched_objects"], doc["reused_objects"]) == (100, 200)
    assert doc["fetched_trees"] == sum(e[3] == "tree" for e in missing)
    requests = nginx_server.requests()[start:]
    # The trees along the paths to what changed come loose, level by level (too few to be worth
    # reading the pack index for); every file object comes from the pack.
    loose = {r.path.removeprefix("/depot/objects/").replace("/", "") for r in requests if "/objects/" in r.path}
    assert loose and loose <= {e[0][7:] for e in missing if e[3] == "tree"}
    sent = sum(r.body_bytes for r in requests if r.path == f"/depot/packs/{pack_hex}.pack" and r.status == 206)
    needed = sum(e[2] for e in missing)
    assert needed <= sent <= needed * (1 + GAP_FRACTION)
    assert sent < (nginx_server.root / "packs" / f"{pack_hex}.pack").stat().st_size / 2
    assert tree_listing(root / "current" / "production") == exported(http_site, v2, tmp_path / "e2")


def test_incremental_hydrate_of_a_few_changes_reads_no_pack_index(http_site, nginx_server, tmp_path):
    """Few new trees and objects (issue 17 item 2): they come loose, the pack list and index are
    never read, and the trees fetched loose end up in the image's bundle, not as loose files."""
    v1 = publish(http_site, make_tree(tmp_path / "v1", many_files()))
    promote(http_site, v1)
    trust, root = trust_file(http_site), tmp_path / "node"
    hydrate(root, nginx_server.url, trust)
    v2 = publish(http_site, make_tree(tmp_path / "v2", many_files(variant=1, changed_every=100)))
    promote(http_site, v2)
    start = len(nginx_server.requests())
    doc = json.loads(hydrate(root, nginx_server.url, trust).stdout)
    assert (doc["fetched_objects"], doc["reused_objects"]) == (3, 297)
    assert doc["fetched_trees"] == 3  # f000, f100 and f200 changed: the root, pkg00 and pkg00/src
    paths = [r.path for r in nginx_server.requests()[start:]]
    assert not [p for p in paths if p.startswith("/depot/packs/")], paths
    loose = [p for p in (root / "cache" / "trees").rglob("*") if p.is_file() and "images" not in p.parts]
    assert loose == []
    assert tree_listing(root / "current" / "production") == exported(http_site, v2, tmp_path / "e2")


def test_corrupt_pack_entry_fails_and_leaves_current(http_site, nginx_server, tmp_path):
    v1, v2, trust, root = on_v1_with_v2_promoted(http_site, nginx_server.url, tmp_path)
    pack_hex, entries = pack_of(nginx_server.root, v2)
    victim = next(
        e for e in entries if e[3] == "file" and e[0] not in {x[0] for x in pack_of(nginx_server.root, v1)[1]}
    )
    pack = nginx_server.root / "packs" / f"{pack_hex}.pack"
    with open(pack, "r+b") as f:  # one byte of the entry's raw block: valid zstd, wrong content
        f.seek(victim[1] + victim[2] // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    proc = hydrate(root, nginx_server.url, trust, check=1)
    assert f"object {victim[0]} (pack {pack_hex[:12]} at {victim[1]}) is corrupt" in proc.stderr
    assert "current/production unchanged" in proc.stderr and v1[7:19] in proc.stderr
    assert os.readlink(root / "current" / "production") == f"../releases/{v1[7:]}/x86_64"
    assert json.loads((root / "state.json").read_text())["marks"]["production"]["version"] == 1
    assert not (root / "releases" / v2[7:] / "x86_64").exists()
    assert not (root / "cache" / "objects" / victim[0][7:9] / victim[0][9:]).exists()


def test_republish_of_an_unchanged_image_reuses_its_packs(site_dir, tmp_path):
    store = site_dir / "store"
    tree = make_tree(tmp_path / "t", many_files(80))
    first = publish(site_dir, tree, "one")
    pack_hex, _ = pack_of(store, first)
    pack = store / "packs" / f"{pack_hex}.pack"

    def republish(tree: Path, label: str) -> tuple[str, int]:
        doc = run_json(site_dir, "publish", "--name", "demo", "--image", f"x86_64={tree}", "--label", label)
        return doc["release_id"], doc["reused_packs"]

    again, reused = republish(tree, "two")  # same image, another release (label)
    assert again != first and reused == 1 and pack_of(store, again)[0] == pack_hex
    # A pack that has gone (a foreign gc, a hand clean-up) is not reused: it is built again.
    pack.unlink()
    third, reused = republish(tree, "three")
    assert reused == 0 and pack_of(store, third)[0] == pack_hex and pack.is_file()
    changed = make_tree(tmp_path / "u", many_files(80, variant=1, changed_every=10))
    fourth, reused = republish(changed, "four")
    assert reused == 0 and pack_of(store, fourth)[0] != pack_hex
    assert run_json(site_dir, "verify", "--deep")["ok"] is True


def test_gc_removes_orphan_packs_and_lists(site_dir, tmp_path):
    rid = publish(site_dir, make_tree(tmp_path / "t", many_files(80)))
    store = site_dir / "store"
    pack_hex, _ = pack_of(store, rid)
    # What a publish killed between its packs and its release leaves behind:
    ghost = "ab" * 32
    orphans = [f"packs/{'cd' * 32}.pack", f"packs/{'cd' * 32}.idx", f"packs/lists/{ghost}.json"]
    for rel in orphans:
        (store / rel).write_bytes(b"x" * 10)
    dry = run_json(site_dir, "gc", "--dry-run")
    assert (dry["packs"], sorted(dry["orphan_pack_files"]), dry["pack_freed_bytes"]) == (1, sorted(orphans), 30)
    assert all((store / rel).exists() for rel in orphans)
    rep = run_json(site_dir, "gc")
    assert (rep["packs"], sorted(rep["orphan_pack_files"]), rep["pack_freed_bytes"]) == (1, sorted(orphans), 30)
    assert rep["deleted"] == 0
    assert sorted(os.listdir(store / "packs")) == [f"{pack_hex}.idx", f"{pack_hex}.pack", "lists"]
    assert not (store / orphans[2]).exists() and (store / "packs" / "lists" / f"{rid[7:]}.json").exists()
    assert run_json(site_dir, "verify", "--deep")["ok"] is True


def test_store_without_packs_still_hydrates(http_site, nginx_server, tmp_path):
    rid = publish(http_site, make_tree(tmp_path / "v1", many_files(100)))
    promote(http_site, rid)
    trust = trust_file(http_site)
    # From a local path, the pack is read by seek + read.
    local = json.loads(hydrate(tmp_path / "local-node", str(nginx_server.root), trust).stdout)
    assert local["fetched_objects"] == 100
    assert tree_listing(tmp_path / "local-node" / "current" / "production") == exported(http_site, rid, tmp_path / "e")
    # A store whose packs are gone (or that never had them): loose objects, one GET each.
    pack_hex, _ = pack_of(nginx_server.root, rid)
    (nginx_server.root / "packs" / f"{pack_hex}.pack").unlink()
    (nginx_server.root / "packs" / f"{pack_hex}.idx").write_text("not an index")
    root = tmp_path / "node"
    start = len(nginx_server.requests())
    doc = json.loads(hydrate(root, nginx_server.url, trust).stdout)
    gets = [r for r in nginx_server.requests()[start:] if "/objects/" in r.path and r.status == 200]
    assert len(gets) == 100 + doc["fetched_trees"] == 100 + 41
    assert tree_listing(root / "current" / "production") == tree_listing(
        tmp_path / "local-node" / "current" / "production"
    )
    (nginx_server.root / "packs" / "lists" / f"{rid[7:]}.json").unlink()
    doc = json.loads(hydrate(tmp_path / "node2", nginx_server.url, trust).stdout)
    assert doc["fetched_objects"] == 100


def test_pack_missing_mid_hydrate_falls_back_to_loose_objects(http_site, nginx_server, tmp_path):
    rid = publish(http_site, make_tree(tmp_path / "v1", many_files(100)))
    promote(http_site, rid)
    pack_hex, _ = pack_of(nginx_server.root, rid)
    (nginx_server.root / "packs" / f"{pack_hex}.pack").unlink()  # index still there: ranges answer 404
    root = tmp_path / "node"
    doc = json.loads(hydrate(root, nginx_server.url, trust_file(http_site)).stdout)
    assert doc["fetched_objects"] == 100 and doc["fetched_trees"] == 41
    assert tree_listing(root / "current" / "production") == exported(http_site, rid, tmp_path / "e")


def test_plan_spans_bounds_gap_waste_and_splits_for_parallelism():
    entries = [PackEntry(f"sha256:{i:064x}", i * 1000, 1000, "file", "p") for i in range(100)]
    every_other = plan_spans(entries[::2], workers=1)
    assert sum(s.end - s.start for s in every_other) <= 50 * 1000 * (1 + GAP_FRACTION)
    assert sum(len(s.entries) for s in every_other) == 50
    whole = plan_spans(entries, workers=1)
    assert [(s.start, s.end) for s in whole] == [(0, 100_000)]
    big = [PackEntry(f"sha256:{i:064x}", i << 16, 1 << 16, "file", "p") for i in range(64)]  # 4 MiB
    parts = plan_spans(big, workers=4)
    assert len(parts) == 4 and parts[0].start == 0 and parts[-1].end == 64 << 16
    assert all(a.end == b.start for a, b in zip(parts, parts[1:]))


def test_full_hydrate_keeps_the_image_trees_in_one_bundle_and_rehashes_it(http_site, nginx_server, tmp_path):
    """A pack hydrate writes the image's trees as one bundle file (no file per tree); a damaged
    bundle is caught by re-hashing when an incremental hydrate reads it (exit 1, current kept,
    bundle removed), and the rerun fetches the trees again and completes."""
    v1 = publish(http_site, make_tree(tmp_path / "v1", many_files()))
    promote(http_site, v1)
    trust = trust_file(http_site)
    root = tmp_path / "node"
    doc = json.loads(hydrate(root, nginx_server.url, trust).stdout)
    trees = root / "cache" / "trees"
    assert sorted(os.listdir(trees)) == ["images"]
    bundle = trees / "images" / doc_root(root)
    assert os.listdir(trees / "images") == [bundle.name]
    body = bundle.read_bytes()
    assert bundle_digests(body) == set(tree_digests(nginx_server.root, v1)) and doc["fetched_trees"] == 41

    files = dict(many_files(), **{"pkg00/src/f000.jl": b"changed\n"})
    v2 = publish(http_site, make_tree(tmp_path / "v2", files))
    promote(http_site, v2)
    reused = set(tree_digests(nginx_server.root, v1)) & set(tree_digests(nginx_server.root, v2))
    assert reused
    head = body.index(f"{min(reused)} ".encode())
    at = body.index(b"\n", head) + 3  # inside the tree's bytes ({"entries"…): same length, other bytes
    damaged = body[:at] + bytes([body[at] ^ 0x20]) + body[at + 1 :]
    os.chmod(bundle, 0o644)
    bundle.write_bytes(damaged)
    before = os.readlink(root / "current" / "production")
    failed = hydrate(root, nginx_server.url, trust, check=None)
    assert failed.returncode == 1 and "corrupt" in failed.stderr
    assert os.readlink(root / "current" / "production") == before and not bundle.exists()
    json.loads(hydrate(root, nginx_server.url, trust).stdout)
    assert sorted(os.listdir(trees / "images")) == [doc_root(root)]
    assert tree_listing(root / "current" / "production") == exported(http_site, v2, tmp_path / "export")


def bundle_digests(body: bytes) -> set[str]:
    """The tree digests a bundle holds, each checked against its bytes (records: "<digest> <n>\\n<n bytes>")."""
    out, pos = set(), 0
    while pos < len(body):
        nl = body.index(b"\n", pos)
        digest, n = body[pos:nl].decode().split(" ")
        data = body[nl + 1 : nl + 1 + int(n)]
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
        out.add(digest)
        pos = nl + 1 + int(n)
    return out


def tree_digests(store: Path, rid: str) -> list[str]:
    return [e[0] for e in pack_of(store, rid)[1] if e[3] == "tree"]


def doc_root(root: Path) -> str:
    """Hex of the tree root of the node's newest image (from its state file)."""
    return json.loads((root / "state.json").read_bytes())["history"][-1]["root"][7:]
