"""Hostile pack indexes (issue 12 item 3): the unsigned index of an image's pack lists extra entries.

Packs and their indexes are unsigned. An index may list "tree" entries that no signed tree
references: valid zstd frames that hash to their names, each a few hundred bytes that inflate to
hundreds of MiB. A node must fetch only the trees its verified root reaches, and the index itself
is bounded by the image's signed file count. Each case hydrates in a child process under
``RLIMIT_AS`` (512 MiB: a normal hydrate needs far less, the attack needs about 2 GiB) and must
install exactly the published tree, with nothing unreferenced in the node's cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from pathlib import Path

import pytest
import zstandard
from limits import run_console_limited

from core.node.hydrate.bundles import load_bundles
from core.node.root import NodeRoot

from helpers import exported, make_tree, promote, publish, tree_listing, trust_file

MIB = 1 << 20
LIMIT = 512 * MIB
BOMB_SIZE = 160 * MIB  # each bomb inflates to this; 6 of them: 960 MiB, past the limit on their own
BOMBS = 6


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@functools.cache
def bombs(content_size: bool) -> tuple[tuple[str, bytes], ...]:
    """(digest, zstd frame) of ``BOMBS`` distinct contents of ``BOMB_SIZE`` bytes each.

    With ``content_size`` the frame header declares the size (the decoder allocates it at once);
    without, the decoder must stream it.
    """
    cctx = zstandard.ZstdCompressor(level=1, write_content_size=content_size)
    out = []
    for i in range(BOMBS):
        data = bytes([i + 1]) * BOMB_SIZE
        out.append((digest_of(data), cctx.compress(data)))
        del data
    return tuple(out)


def files(n: int = 120) -> dict[str, bytes]:
    rnd = random.Random(7)
    return {f"pkg{i % 6}/f{i:03d}.txt": rnd.randbytes(300 + i) for i in range(n)}


def image_pack(store: Path, rid: str) -> tuple[dict, str, dict]:
    """(pack list, pack id, index) of image x86_64 of ``rid``."""
    listing = json.loads((store / "packs" / "lists" / f"{rid[7:]}.json").read_text())
    (pack_id,) = listing["images"]["x86_64"]
    index = json.loads((store / "packs" / f"{pack_id[7:]}.idx").read_text())
    return listing, pack_id, index


def rewrite_pack(store: Path, rid: str, extra: list[tuple[str, bytes, str]], repeat: int = 1) -> list[list]:
    """Append ``extra`` (digest, frame, kind) to the image's pack and index; return the honest entries.

    The pack gets a new name (its hash), the pack list names it (``repeat`` times).
    """
    listing, pack_id, index = image_pack(store, rid)
    honest = index["entries"]
    pack = bytearray((store / "packs" / f"{pack_id[7:]}.pack").read_bytes())
    entries = list(honest)
    for digest, frame, kind in extra:
        entries.append([digest, len(pack), len(frame), kind])
        pack += frame
    new_id = digest_of(bytes(pack))
    (store / "packs" / f"{new_id[7:]}.pack").write_bytes(bytes(pack))
    doc = {"schema": index["schema"], "pack": new_id, "size": len(pack), "entries": entries}
    (store / "packs" / f"{new_id[7:]}.idx").write_text(json.dumps(doc, separators=(",", ":")))
    listing["images"]["x86_64"] = [new_id] * repeat
    (store / "packs" / "lists" / f"{rid[7:]}.json").write_text(json.dumps(listing))
    return honest


def hydrate_limited(root: Path, store: str, trust: Path) -> object:
    return run_console_limited(
        None,
        "node",
        "hydrate",
        "--root",
        str(root),
        "--store",
        store,
        "--trust",
        str(trust),
        "--channel",
        "production",
        "--json",
        limit=LIMIT,
    )


def assert_exact_and_nothing_unreferenced(site: Path, rid: str, root: Path, honest: list[list], tmp: Path) -> None:
    assert tree_listing(root / "current" / "production") == exported(site, rid, tmp / "export")
    node = NodeRoot(root)
    trees = {e[0] for e in honest if e[3] == "tree"}
    objects = {e[0] for e in honest if e[3] == "file"}
    assert set(load_bundles(node)) == trees  # the bundle holds exactly the reachable trees
    loose_trees = {
        "sha256:" + sub.name + f.name for sub in node.trees.iterdir() if sub.name != "images" for f in sub.iterdir()
    }
    assert loose_trees <= trees
    cached = {"sha256:" + sub.name + f.name.removesuffix(".x") for sub in node.objects.iterdir() for f in sub.iterdir()}
    assert cached == objects
    held = sum(f.stat().st_size for f in node.cache.rglob("*") if f.is_file())
    assert held < 2 * MIB, held  # nothing near a bomb's size was kept


@pytest.mark.parametrize("content_size", [True, False], ids=["declared-size", "streamed"])
def test_unreferenced_tree_bombs_in_a_local_pack_are_never_fetched(site_dir: Path, tmp_path: Path, content_size):
    rid = publish(site_dir, make_tree(tmp_path / "t", files()))
    promote(site_dir, rid)
    store = site_dir / "store"
    honest = rewrite_pack(store, rid, [(d, f, "tree") for d, f in bombs(content_size)])
    root = tmp_path / "node"
    proc = hydrate_limited(root, str(store), trust_file(site_dir))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["fetched_trees"] == sum(e[3] == "tree" for e in honest)
    assert_exact_and_nothing_unreferenced(site_dir, rid, root, honest, tmp_path)


def test_unreferenced_tree_bombs_over_nginx_are_never_fetched(http_site: Path, nginx_server, tmp_path: Path):
    rid = publish(http_site, make_tree(tmp_path / "t", files()))
    promote(http_site, rid)
    pack_before = image_pack(nginx_server.root, rid)[1]
    honest = rewrite_pack(nginx_server.root, rid, [(d, f, "tree") for d, f in bombs(True)])
    new_pack = image_pack(nginx_server.root, rid)[1]
    start = len(nginx_server.requests())
    root = tmp_path / "node"
    proc = hydrate_limited(root, nginx_server.url, trust_file(http_site))
    assert proc.returncode == 0, proc.stderr
    assert_exact_and_nothing_unreferenced(http_site, rid, root, honest, tmp_path)
    requests = nginx_server.requests()[start:]
    ranges = [r for r in requests if r.path == f"/depot/packs/{new_pack[7:]}.pack"]
    assert ranges and {r.status for r in ranges} == {206} and len(requests) < 20
    honest_bytes = (nginx_server.root / "packs" / f"{pack_before[7:]}.pack").stat().st_size
    frames = sum(len(f) for _, f in bombs(True))  # compressed, read at most once, never inflated
    assert honest_bytes <= sum(r.body_bytes for r in ranges) <= honest_bytes + frames


def test_unreferenced_file_entries_and_mislabelled_kinds_are_not_fetched(site_dir: Path, tmp_path: Path):
    rid = publish(site_dir, make_tree(tmp_path / "t", files()))
    promote(site_dir, rid)
    store = site_dir / "store"
    cctx = zstandard.ZstdCompressor()
    strays = [random.Random(i).randbytes(4000) for i in range(80)]
    extra = [(digest_of(s), cctx.compress(s), "file") for s in strays]
    extra += [(d, f, "file") for d, f in bombs(False)[:2]]  # bombs labelled as files
    honest = rewrite_pack(store, rid, extra)
    root = tmp_path / "node"
    proc = hydrate_limited(root, str(store), trust_file(site_dir))
    assert proc.returncode == 0, proc.stderr
    assert_exact_and_nothing_unreferenced(site_dir, rid, root, honest, tmp_path)


def test_an_index_far_larger_than_the_signed_image_is_not_loaded(site_dir: Path, tmp_path: Path):
    """An index listing a million entries, named four times by the pack list, for a 120-file image:
    the node uses loose objects instead of holding millions of entries."""
    rid = publish(site_dir, make_tree(tmp_path / "t", files()))
    promote(site_dir, rid)
    store = site_dir / "store"
    listing, pack_id, index = image_pack(store, rid)
    size = index["size"]
    fake = [[f"sha256:{i:064x}", i % size, 1, "file"] for i in range(1_000_000)]
    doc = {"schema": index["schema"], "pack": pack_id, "size": size, "entries": index["entries"] + fake}
    (store / "packs" / f"{pack_id[7:]}.idx").write_text(json.dumps(doc, separators=(",", ":")))
    listing["images"]["x86_64"] = [pack_id] * 4
    (store / "packs" / "lists" / f"{rid[7:]}.json").write_text(json.dumps(listing))
    root = tmp_path / "node"
    proc = hydrate_limited(root, str(store), trust_file(site_dir))
    assert proc.returncode == 0, proc.stderr
    assert_exact_and_nothing_unreferenced(site_dir, rid, root, index["entries"], tmp_path)


def test_a_normal_hydrate_fits_the_limit(site_dir: Path, tmp_path: Path):
    """The limit is not so tight that the honest case fails (so the cases above test the attack)."""
    rid = publish(site_dir, make_tree(tmp_path / "t", files()))
    promote(site_dir, rid)
    honest = image_pack(site_dir / "store", rid)[2]["entries"]
    root = tmp_path / "node"
    proc = hydrate_limited(root, str(site_dir / "store"), trust_file(site_dir))
    assert proc.returncode == 0, proc.stderr
    assert_exact_and_nothing_unreferenced(site_dir, rid, root, honest, tmp_path)


def test_tree_entries_past_the_budget_are_fetched_level_by_level_only_when_reached(site_dir: Path, tmp_path: Path):
    """More listed tree bytes than the signed file count allows in one go (junk frames, never
    valid): the node reads only the trees its walk reaches, and the bombs stay unread."""
    rid = publish(site_dir, make_tree(tmp_path / "t", files()))
    promote(site_dir, rid)
    store = site_dir / "store"
    junk = [random.Random(f"junk{i}").randbytes(700_000) for i in range(3)]
    extra = [(digest_of(j), j, "tree") for j in junk] + [(d, f, "tree") for d, f in bombs(False)]
    honest = rewrite_pack(store, rid, extra)
    root = tmp_path / "node"
    proc = hydrate_limited(root, str(store), trust_file(site_dir))
    assert proc.returncode == 0, proc.stderr
    assert_exact_and_nothing_unreferenced(site_dir, rid, root, honest, tmp_path)
