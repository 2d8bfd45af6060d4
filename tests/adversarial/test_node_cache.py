"""A cached node object that an image links to is not trusted by its size (issue 12 item 13).

The node hydrated v1; then one of its cached objects (hard-linked by v1's image) gets other bytes
of the same size, in several ways (written in place, its mtime restored, its mode changed and put
back, replaced by another inode). v2, which holds the same file, is hydrated next: its image must
get the right bytes (the object is re-hashed and fetched again), never the wrong ones.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from helpers import hydrate, make_tree, promote, publish, trust_file

SHARED = b"shared library bytes\n" * 200
WRONG = b"X" * len(SHARED)


def object_file(root: Path, data: bytes) -> Path:
    h = hashlib.sha256(data).hexdigest()
    return root / "cache" / "objects" / h[:2] / h[2:]


def overwrite_in_place(path: Path) -> None:
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.write(WRONG)
    os.chmod(path, 0o444)


def restore_times(path: Path) -> None:
    st = path.stat()
    overwrite_in_place(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def left_writable(path: Path) -> None:
    os.chmod(path, 0o644)
    path.write_bytes(WRONG)


def same_mode_no_chmod(path: Path) -> None:  # root (or a careless tool) writes a 0444 file as is
    fd = os.open(path, os.O_WRONLY)
    os.write(fd, WRONG)
    os.close(fd)


def truncate_and_refill(path: Path) -> None:
    st = path.stat()
    os.chmod(path, 0o644)
    with open(path, "wb") as f:
        f.write(WRONG)
    os.chmod(path, 0o444)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


SHAPES = {
    "in-place": overwrite_in_place,
    "mtime-restored": restore_times,
    "left-writable": left_writable,
    "no-chmod": same_mode_no_chmod,
    "truncated-refilled-mtime-restored": truncate_and_refill,
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_tampered_linked_object_never_reaches_the_next_image(site_dir: Path, tmp_path: Path, shape: str):
    store = site_dir / "store"
    v1 = publish(site_dir, make_tree(tmp_path / "t1", {"lib/shared.so": SHARED, "v.txt": "1\n"}), label="1")
    promote(site_dir, v1)
    trust = trust_file(site_dir)
    root = tmp_path / "node"
    hydrate(root, str(store), trust)
    cached = object_file(root, SHARED)
    assert cached.stat().st_nlink == 2  # linked by v1's image
    SHAPES[shape](cached)
    assert cached.stat().st_size == len(SHARED) and cached.read_bytes() == WRONG

    v2 = publish(site_dir, make_tree(tmp_path / "t2", {"lib/shared.so": SHARED, "v.txt": "2\n"}), label="2")
    promote(site_dir, v2)
    doc = json.loads(hydrate(root, str(store), trust).stdout)
    assert doc["release"] == v2
    image = root / "current" / "production"
    assert (image / "lib" / "shared.so").read_bytes() == SHARED
    assert object_file(root, SHARED).read_bytes() == SHARED  # the cache holds the right bytes again
    assert doc["fetched_objects"] == 2  # v.txt and the re-fetched shared object


def test_an_untouched_linked_object_is_reused_without_a_fetch(site_dir: Path, tmp_path: Path):
    """The check is not a blanket re-fetch: an object nobody touched is reused."""
    store = site_dir / "store"
    v1 = publish(site_dir, make_tree(tmp_path / "t1", {"lib/shared.so": SHARED, "v.txt": "1\n"}), label="1")
    promote(site_dir, v1)
    trust = trust_file(site_dir)
    root = tmp_path / "node"
    hydrate(root, str(store), trust)
    v2 = publish(site_dir, make_tree(tmp_path / "t2", {"lib/shared.so": SHARED, "v.txt": "2\n"}), label="2")
    promote(site_dir, v2)
    doc = json.loads(hydrate(root, str(store), trust).stdout)
    assert (doc["fetched_objects"], doc["reused_objects"]) == (1, 1)
    assert (root / "current" / "production" / "lib" / "shared.so").read_bytes() == SHARED
