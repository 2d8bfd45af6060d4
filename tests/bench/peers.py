"""Timed runs of the peer tools the benchmarks compare against (DESIGN §9).

Each helper runs one peer operation on real files with the real tool and returns its wall time in
seconds (``time.perf_counter``). Only the operation itself is timed: one-time setup (``ostree init``,
``remote add``) happens before the clock starts. A missing tool raises ``PeerMissing`` naming the apt
package; a failing tool raises ``PeerFailed`` with the command and the tool's last stderr line.

- ``sha256_tree``: the floor any publisher pays — read and hash every regular file once,
  single-threaded, with the same 1 MiB buffer as ``core.model.digest.hash_file``.
- ``publish_floor``: the hardware floor of issue 17 — ``tar -cf - . | zstd -T0 -3`` of the tree
  into one file, plus sha256 of the tar stream's bytes (hashed from memory, so only hashing is
  timed): every byte read, compressed and hashed once, with no per-file output at all.
- ``ostree_commit`` / ``ostree_diff`` / ``ostree_pull_checkout``: OSTree, the closest peer
  (content-addressed trees, archive repos served over HTTP, hard-link checkouts). Flags checked
  against ostree 2022.7. ``--no-xattrs`` on commit because depot images carry no xattrs;
  ``fsync`` stays ostree's default (on) unless the caller passes ``fsync=False``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from core.model.digest import CHUNK


class PeerMissing(RuntimeError):
    """The peer tool is not installed."""


class PeerFailed(RuntimeError):
    """The peer tool ran and failed."""


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PeerMissing(f"{name} not found on PATH (install it: apt-get install -y {package})")
    return path


def _ostree() -> str:
    return _tool("ostree", "ostree")


def _run(args: list[str]) -> str:
    """Run a command, return its stdout; PeerFailed with the last stderr line on non-zero exit."""
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"]
        raise PeerFailed(f"{' '.join(args)}: {lines[-1]}")
    return proc.stdout


def _timed(args: list[str]) -> float:
    """Run a command with stdout discarded (output volume must not skew the time); return seconds."""
    start = time.perf_counter()
    proc = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"]
        raise PeerFailed(f"{' '.join(args)}: {lines[-1]}")
    return elapsed


def sha256_tree(root: Path) -> float:
    """Seconds to sha256 every regular file under ``root`` (symlinks not followed), one thread."""
    start = time.perf_counter()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            h = hashlib.sha256()
            with open(path, "rb", buffering=0) as f:
                while n := f.readinto(buf):
                    h.update(view[:n])
            h.hexdigest()
    return time.perf_counter() - start


def publish_floor(tree: Path, out: Path) -> tuple[float, float]:
    """(seconds for ``tar -cf - . | zstd -T0 -3`` of ``tree`` into the file ``out``, seconds for
    sha256 of the tar stream's bytes). Their sum is the floor publish ratios are given against."""
    _tool("tar", "tar")
    _tool("zstd", "zstd")
    script = 'tar -cf - . | zstd -T0 -3 -q -f -o "$0"'
    start = time.perf_counter()
    proc = subprocess.run(["sh", "-c", script, str(out)], cwd=tree, stderr=subprocess.PIPE, text=True)
    compress = time.perf_counter() - start
    if proc.returncode != 0:
        raise PeerFailed(f"{script}: {proc.stderr.strip() or proc.returncode}")
    data = subprocess.run(["tar", "-cf", "-", "."], cwd=tree, capture_output=True, check=True).stdout
    sha = _sha256_seconds(data)
    os.unlink(out)
    return compress, sha


def _sha256_seconds(data: bytes) -> float:
    """Seconds for sha256 of ``data`` in 1 MiB pieces (what any reader that checks bytes pays)."""
    view = memoryview(data)
    start = time.perf_counter()
    h = hashlib.sha256()
    for i in range(0, len(view), CHUNK):
        h.update(view[i : i + CHUNK])
    h.hexdigest()
    return time.perf_counter() - start


def tar_zst(tree: Path, out: Path, files: list[str] | None = None) -> None:
    """``tar -cf - . | zstd -T0 -3`` of ``tree`` (or only its relative ``files``) into ``out``:
    what the hydrate floors fetch."""
    _tool("tar", "tar")
    _tool("zstd", "zstd")
    out.parent.mkdir(parents=True, exist_ok=True)
    names = ["."]
    if files is not None:
        listing = out.with_name(out.name + ".list")
        listing.write_bytes(b"".join(f.encode() + b"\0" for f in files))
        names = ["--null", "-T", str(listing)]
    script = 'tar -cf - "$@" | zstd -T0 -3 -q -f -o "$0"'
    proc = subprocess.run(["sh", "-c", script, str(out), *names], cwd=tree, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise PeerFailed(f"tar | zstd of {tree}: {proc.stderr.strip() or proc.returncode}")


def _fetch_unpack(url: str, dest: Path) -> float:
    """Seconds for ``curl -sf URL | zstd -dc | tar -xf - -C dest``."""
    _tool("curl", "curl")
    dest.mkdir(parents=True, exist_ok=True)
    script = 'curl -sf "$0" | zstd -dc | tar -xf - -C "$1"'
    start = time.perf_counter()
    proc = subprocess.run(["sh", "-c", script, url, str(dest)], stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise PeerFailed(f"{script}: {proc.stderr.strip() or proc.returncode}")
    return elapsed


def hydrate_floor(url: str, dest: Path) -> tuple[float, float]:
    """(seconds for ``curl | zstd -dc | tar -x`` of the image's ``.tar.zst`` at ``url`` into the new
    directory ``dest``, seconds for sha256 of the image's bytes). Their sum is the floor full
    hydrate ratios are given against: every byte fetched, decompressed, written and hashed once."""
    unpack = _fetch_unpack(url, dest)
    data = subprocess.run(["tar", "-cf", "-", "."], cwd=dest, capture_output=True, check=True).stdout
    return unpack, _sha256_seconds(data)


def incremental_floor(previous: Path, dest: Path, delta_url: str) -> tuple[float, float]:
    """(seconds for ``cp -al previous dest``: the directories and hard links any complete new image
    costs, seconds to fetch and unpack the ``.tar.zst`` of the changed files at ``delta_url``).
    Their sum is the floor incremental hydrate ratios are given against."""
    start = time.perf_counter()
    _run(["cp", "-al", str(previous), str(dest)])
    links = time.perf_counter() - start
    return links, _fetch_unpack(delta_url, dest.parent / f"{dest.name}.delta")


def _ensure_repo(repo: Path, mode: str) -> None:
    if not (Path(repo) / "config").is_file():
        Path(repo).mkdir(parents=True, exist_ok=True)
        _run([_ostree(), "init", f"--repo={repo}", f"--mode={mode}"])


def ostree_commit(repo: Path, tree: Path, branch: str, *, fsync: bool = True) -> float:
    """Seconds for ``ostree commit`` of directory ``tree`` onto ``branch`` of an archive-mode repo.

    The repo is created (``--mode=archive``, the mode served over HTTP) if it does not exist yet;
    a second commit on the same branch gets the first as parent, as a new release would.
    """
    _ensure_repo(repo, "archive")
    args = [
        _ostree(),
        "commit",
        f"--repo={repo}",
        f"--branch={branch}",
        f"--tree=dir={tree}",
        "--subject=bench",
        "--no-xattrs",
    ]
    if not fsync:
        args.append("--fsync=false")
    return _timed(args)


def ostree_diff(repo: Path, rev_a: str, rev_b: str) -> float:
    """Seconds for ``ostree diff rev_a rev_b`` (refs or checksums), output discarded."""
    return _timed([_ostree(), "diff", f"--repo={repo}", rev_a, rev_b])


def ostree_rev(repo: Path, ref: str) -> str:
    """The commit checksum ``ref`` resolves to (``ostree rev-parse``)."""
    return _run([_ostree(), "rev-parse", f"--repo={repo}", ref]).strip()


def ostree_pull_checkout(url: str, repo: Path, branch: str, checkout: Path, *, fsync: bool = True) -> float:
    """Seconds for ``ostree pull`` of ``branch`` from ``url`` plus ``ostree checkout -U -H`` into ``checkout``.

    Node-side peer of hydrate: a bare-user repo (created if absent, remote ``origin`` added or
    replaced with ``--no-gpg-verify``), then a hard-link checkout, which must not exist yet.
    Reusing ``repo`` for a second branch measures an incremental pull.
    """
    ostree = _ostree()
    _ensure_repo(repo, "bare-user")
    _run([ostree, f"--repo={repo}", "remote", "add", "--force", "--no-gpg-verify", "origin", url])
    pull = [ostree, f"--repo={repo}", "pull", "origin", branch]
    checkout_args = [ostree, f"--repo={repo}", "checkout", "-U", "-H", f"origin:{branch}", str(checkout)]
    if not fsync:
        pull.insert(3, "--disable-fsync")
        checkout_args.insert(3, "--fsync=false")
    return _timed(pull) + _timed(checkout_args)
