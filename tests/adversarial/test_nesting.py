"""Nesting thousands deep (issue 12 item 11): directory trees and JSON documents.

Images nest at most 256 directories (``MAX_TREE_DEPTH``), signed JSON documents at most 64 levels
(``MAX_JSON_DEPTH``); deeper input is refused with one line and exit 2 (``verify`` reports it,
exit 1), before anything is written, never a ``RecursionError``: at publish (a directory), verify,
export and node hydrate (a store written by hand), for a release envelope, a release manifest, a
tree object and an unsigned channel pointer.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from core.model.digest import canonical_json, digest_bytes
from core.model.manifest import MODE_DIR, MODE_FILE, Entry, tree_bytes
from core.store.local import LocalStore
from core.trust.signing import CHANNEL_TYPE, RELEASE_TYPE, load_key, make_envelope

from fixtures.hostile_http import HostileServer
from helpers import exported, hydrate, make_tree, promote, publish, run_console, run_json, tree_listing, trust_file


def store_snapshot(site: Path) -> list[str]:
    return sorted(str(p.relative_to(site / "store")) for p in (site / "store").rglob("*"))


def assert_one_line(proc: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("console: "), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "RecursionError" not in proc.stderr
    assert len(proc.stderr) < 600, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


# -- deep directories on disk (paths past PATH_MAX: made and removed through directory fds) -------


def make_deep(root: Path, levels: int, leaf: bytes = b"bottom\n") -> None:
    """``root/d/d/…/d/leaf`` with ``levels`` directories ``d``."""
    root.mkdir(parents=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(levels):
            os.mkdir("d", dir_fd=fd)
            nxt = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        out = os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, leaf)
        os.close(out)
    finally:
        os.close(fd)


def remove_deep(root: Path) -> None:
    """Remove a directory tree of any depth (read-only directories too), without recursion."""
    stack: list[tuple[int, str]] = [(os.open(root, os.O_RDONLY | os.O_DIRECTORY), "")]
    while stack:
        fd = stack[-1][0]
        os.fchmod(fd, 0o755)
        sub = None
        for name in os.listdir(fd):
            if stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                sub = name
                break
            os.unlink(name, dir_fd=fd)
        if sub is not None:
            stack.append((os.open(sub, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd), sub))
            continue
        fd, name = stack.pop()
        os.close(fd)
        if stack:
            os.rmdir(name, dir_fd=stack[-1][0])
    os.rmdir(root)


@pytest.fixture
def deep_src(tmp_path: Path):
    made: list[Path] = []

    def make(levels: int) -> Path:
        src = tmp_path / f"deep{levels}"
        make_deep(src, levels)
        made.append(src)
        return src

    yield make
    for src in made:
        remove_deep(src)


@pytest.mark.parametrize("levels", [257, 5000])
def test_publish_refuses_directories_nested_too_deep(site_dir: Path, deep_src, levels: int) -> None:
    src = deep_src(levels)
    before = store_snapshot(site_dir)
    proc = run_console(site_dir, "publish", "--name", "n", "--image", f"x86_64={src}")
    assert_one_line(proc, 2, "directories nested deeper than 256 levels")
    assert store_snapshot(site_dir) == before


def test_the_deepest_allowed_tree_round_trips(site_dir: Path, tmp_path: Path, deep_src) -> None:
    src = deep_src(256)
    rid = publish(site_dir, src)
    assert run_json(site_dir, "verify", rid[7:], "--deep")["ok"] is True
    want = tree_listing(src)
    assert exported(site_dir, rid, tmp_path / "export") == want
    promote(site_dir, rid)
    node = tmp_path / "node"
    hydrate(node, str(site_dir / "store"), trust_file(site_dir))
    assert tree_listing(node / "current" / "production") == want


# -- a store written by hand ---------------------------------------------------------------------


def sign_release(site: Path, payload: bytes) -> str:
    rid = digest_bytes(payload)
    env = make_envelope(RELEASE_TYPE, payload, [load_key(site / "keys" / "signing.pem")])
    LocalStore.open(site / "store").write_file(f"releases/{rid[7:]}.json", env)
    return rid


def payload_doc(root: str, **over: object) -> dict:
    doc = {
        "type": "depot-release",
        "schema": 1,
        "name": "crafted",
        "label": "",
        "created": "2026-11-21T12:00:00Z",
        "parent": None,
        "builder": {"kind": "tree"},
        "source": {"files": {}, "packages": []},
        "images": {"x86_64": {"root": root, "files": 1, "bytes": 7, "cpu_target": "generic"}},
        "smoke": None,
    }
    doc.update(over)
    return doc


def deep_store_tree(store: LocalStore, levels: int) -> str:
    """A chain of ``levels`` directory trees ending in one file; the root tree's digest."""
    blob = b"bottom\n"
    store.put_object(digest_bytes(blob), blob)
    data = tree_bytes([Entry("leaf", "file", MODE_FILE, len(blob), digest_bytes(blob))])
    store.put_object(digest_bytes(data), data)
    for _ in range(levels):
        data = tree_bytes([Entry("d", "dir", MODE_DIR, len(blob), digest_bytes(data))])
        store.put_object(digest_bytes(data), data)
    return digest_bytes(data)


def refused_everywhere(site: Path, tmp_path: Path, rid: str, message: str, verify_kind: str) -> None:
    """verify (exit 1, one problem of ``verify_kind``), export and pinned hydrate (exit 2, one line)."""
    ver = run_console(site, "verify", rid[7:], "--deep", "--json")
    assert ver.returncode == 1 and "Traceback" not in ver.stderr, ver.stderr[-2000:]
    problems = json.loads(ver.stdout)["problems"]
    assert [p["kind"] for p in problems] == [verify_kind], problems
    assert message in problems[0]["detail"]

    out = tmp_path / "out"
    assert_one_line(run_console(site, "export", rid, "--arch", "x86_64", str(out)), 2, message)
    assert not out.exists() and not list(tmp_path.glob(".out.export-*"))

    node = tmp_path / "node"
    proc = hydrate(node, str(site / "store"), trust_file(site), "--release", rid, check=None)
    assert_one_line(proc, 2, message)
    assert not (node / "current").exists() or not list((node / "current").iterdir())
    assert not list((node / "releases").glob("*/x86_64"))


@pytest.mark.parametrize("levels", [257, 5000])
def test_store_tree_nested_too_deep(site_dir: Path, tmp_path: Path, levels: int) -> None:
    root = deep_store_tree(LocalStore.open(site_dir / "store"), levels)
    rid = sign_release(site_dir, canonical_json(payload_doc(root)))
    refused_everywhere(site_dir, tmp_path, rid, "directories nested deeper than 256 levels", "too-deep")


def deep_json(levels: int, inner: str = "0") -> str:
    return "[" * levels + inner + "]" * levels


@pytest.mark.parametrize("levels", [900, 5000])
def test_tree_object_nested_deep(site_dir: Path, tmp_path: Path, levels: int) -> None:
    store = LocalStore.open(site_dir / "store")
    tree = ('{"entries":' + deep_json(levels) + "}").encode()
    store.put_object(digest_bytes(tree), tree)
    rid = sign_release(site_dir, canonical_json(payload_doc(digest_bytes(tree))))
    refused_everywhere(site_dir, tmp_path, rid, "tree sha256:", "malformed-tree")


@pytest.mark.parametrize("levels", [900, 5000])
@pytest.mark.parametrize("field", ["entry-name", "entry-mode"])
def test_tree_entry_values_nested_deep(site_dir: Path, tmp_path: Path, levels: int, field: str) -> None:
    store = LocalStore.open(site_dir / "store")
    blob = b"bottom\n"
    store.put_object(digest_bytes(blob), blob)
    entry = {"name": "f", "type": "file", "mode": 420, "size": 7, "digest": digest_bytes(blob)}
    key = field.split("-")[1]
    text = json.dumps({"entries": [dict(entry, **{key: "@"})]}).replace('"@"', deep_json(levels))
    tree = text.encode()
    store.put_object(digest_bytes(tree), tree)
    rid = sign_release(site_dir, canonical_json(payload_doc(digest_bytes(tree))))
    refused_everywhere(site_dir, tmp_path, rid, "tree sha256:", "malformed-tree")


@pytest.mark.parametrize("levels", [100, 900, 5000])
def test_release_manifest_nested_deep(site_dir: Path, tmp_path: Path, levels: int) -> None:
    store = LocalStore.open(site_dir / "store")
    leaf = tree_bytes([])
    store.put_object(digest_bytes(leaf), leaf)
    text = canonical_json(payload_doc(digest_bytes(leaf), builder={"kind": "tree", "x": "@"})).decode()
    rid = sign_release(site_dir, text.replace('"@"', deep_json(levels)).encode())
    message = "JSON nested deeper than 64 levels"
    assert_one_line(run_console(site_dir, "show", rid), 2, message)
    refused_everywhere(site_dir, tmp_path, rid, message, "malformed-release")


@pytest.mark.parametrize("levels", [900, 5000])
def test_release_envelope_nested_deep(site_dir: Path, tmp_path: Path, levels: int) -> None:
    rid = "sha256:" + "ab" * 32
    (site_dir / "store" / "releases" / f"{rid[7:]}.json").write_text(deep_json(levels))
    assert_one_line(run_console(site_dir, "show", rid), 2, "JSON nested deeper than 64 levels")
    refused_everywhere(site_dir, tmp_path, rid, "JSON nested deeper than 64 levels", "malformed-release")


@pytest.mark.parametrize("levels", [900, 5000])
@pytest.mark.parametrize("where", ["envelope", "signatures"])
def test_unsigned_pointer_nested_deep(site_dir: Path, tmp_path: Path, levels: int, where: str) -> None:
    rid = publish(site_dir, _small_tree(tmp_path / "src"))
    promote(site_dir, rid)
    pointer = site_dir / "store" / "channels" / "production.json"
    if where == "envelope":
        pointer.write_text(deep_json(levels))
    else:
        env = {"payloadType": CHANNEL_TYPE, "payload": "e30=", "signatures": [{"keyid": "k", "sig": "@"}]}
        pointer.write_text(json.dumps(env).replace('"@"', deep_json(levels)))
    node = tmp_path / "node"
    proc = hydrate(node, str(site_dir / "store"), trust_file(site_dir), check=None)
    assert_one_line(proc, 4, "malformed: production pointer: JSON nested deeper than 64 levels")
    assert not (node / "current" / "production").exists()
    channels = run_console(site_dir, "channels")
    assert "Traceback" not in channels.stderr and "RecursionError" not in channels.stderr, channels.stderr[-2000:]


def test_signed_pointer_payload_nested_deep(site_dir: Path, tmp_path: Path) -> None:
    rid = publish(site_dir, _small_tree(tmp_path / "src"))
    promote(site_dir, rid)
    payload = ('{"type":"depot-channel","schema":1,"reason":' + deep_json(5000) + "}").encode()
    env = make_envelope(CHANNEL_TYPE, payload, [load_key(site_dir / "keys" / "signing.pem")])
    (site_dir / "store" / "channels" / "production.json").write_bytes(env)
    node = tmp_path / "node"
    proc = hydrate(node, str(site_dir / "store"), trust_file(site_dir), check=None)
    assert_one_line(proc, 4, "malformed: production pointer: JSON nested deeper than 64 levels")
    assert not (node / "current" / "production").exists()


def _small_tree(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "a.txt").write_text("a\n")
    return root


def test_diff_against_a_store_tree_nested_too_deep(site_dir: Path, tmp_path: Path) -> None:
    """``console diff`` walks both trees: a hand-made one nested past the bound is one line, exit 2."""
    plain = publish(site_dir, make_tree(tmp_path / "plain", {"leaf": b"bottom\n"}))
    root = deep_store_tree(LocalStore.open(site_dir / "store"), 1500)
    deep = sign_release(site_dir, canonical_json(payload_doc(root)))
    assert_one_line(run_console(site_dir, "diff", plain, deep), 2, "directories nested deeper than 256 levels")


@pytest.mark.parametrize("levels", [900, 100_000])
def test_store_json_nested_deep_is_one_line(
    site_dir: Path, tmp_path: Path, hostile_http: HostileServer, levels: int
) -> None:
    """A store whose ``store.json`` nests past the parser's reach: local and HTTP, exit 2, one line."""
    deep = ("[" * levels + "]" * levels).encode()
    local = tmp_path / "store"
    local.mkdir()
    (local / "store.json").write_bytes(deep)
    (hostile_http.root / "store.json").write_bytes(deep)
    for store in (str(local), hostile_http.url):
        proc = run_console(
            None,
            "node",
            "hydrate",
            "--root",
            str(tmp_path / "node"),
            "--store",
            store,
            "--trust",
            str(trust_file(site_dir)),
            "--channel",
            "production",
        )
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
        assert "store.json" in proc.stderr and "Traceback" not in proc.stderr
