"""tests/bench/peers.py: the peer tools really run on a tiny generated depot."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.depotgen import generate
from bench.peers import (
    PeerFailed,
    PeerMissing,
    ostree_commit,
    ostree_diff,
    ostree_pull_checkout,
    ostree_rev,
    sha256_tree,
)

SCALE = 0.005


@pytest.fixture(scope="module")
def depots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("peers")
    generate(base / "v0", scale=SCALE, variant=0)
    generate(base / "v1", scale=SCALE, variant=1)
    return base / "v0", base / "v1"


def snapshot(root: Path) -> dict[str, tuple]:
    """Relative path -> (kind, exec bit, bytes or link target), directories included."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", bool(path.stat().st_mode & 0o100), path.read_bytes())
    return out


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server (stdlib) over a fresh directory: (base URL, directory)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_sha256_tree_returns_seconds(depots: tuple[Path, Path]) -> None:
    seconds = sha256_tree(depots[0])
    assert isinstance(seconds, float) and seconds > 0


def test_commit_twice_then_diff(depots: tuple[Path, Path], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    first = ostree_commit(repo, depots[0], "depot/x86_64")
    rev_a = ostree_rev(repo, "depot/x86_64")
    second = ostree_commit(repo, depots[1], "depot/x86_64")
    rev_b = ostree_rev(repo, "depot/x86_64")
    assert isinstance(first, float) and first > 0
    assert isinstance(second, float) and second > 0
    assert (repo / "config").read_text().count("mode=archive-z2") == 1
    assert len(rev_a) == len(rev_b) == 64 and rev_a != rev_b
    assert ostree_rev(repo, "depot/x86_64^") == rev_a
    log = subprocess.run(
        ["ostree", "log", f"--repo={repo}", "depot/x86_64"], capture_output=True, text=True, check=True
    ).stdout
    assert [line.split()[1] for line in log.splitlines() if line.startswith("commit ")] == [rev_b, rev_a]

    seconds = ostree_diff(repo, rev_a, rev_b)
    assert isinstance(seconds, float) and seconds > 0
    diff = subprocess.run(
        ["ostree", "diff", f"--repo={repo}", rev_a, rev_b], capture_output=True, text=True, check=True
    ).stdout
    assert "environments/v1.10/Manifest.toml" in diff


def test_pull_checkout_over_http_reproduces_the_tree(
    depots: tuple[Path, Path], tmp_path: Path, http_root: tuple[str, Path]
) -> None:
    url, www = http_root
    ostree_commit(www / "repo", depots[0], "depot/x86_64")
    checkout = tmp_path / "checkout"
    seconds = ostree_pull_checkout(f"{url}/repo", tmp_path / "node-repo", "depot/x86_64", checkout)
    assert isinstance(seconds, float) and seconds > 0
    assert snapshot(checkout) == snapshot(depots[0])


def test_failures_are_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, empty = tmp_path / "repo", tmp_path / "empty-tree"
    empty.mkdir()
    ostree_commit(repo, empty, "b")
    with pytest.raises(PeerFailed, match=r"ostree diff --repo=.*: .*nope"):
        ostree_diff(repo, "b", "nope")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(PeerMissing, match=r"^ostree not found on PATH \(install it: apt-get install -y ostree\)$"):
        ostree_commit(repo, empty, "b")
