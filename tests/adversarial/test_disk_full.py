"""Disk full during publish, promote and hydrate (issue 12 item 11): one line, exit 1, nothing half-written.

The full disk is a real 2 MiB tmpfs (mounted here when running as root; skipped otherwise), and the
file size limit (``RLIMIT_FSIZE``, which makes writes fail with ``EFBIG``) stands in for it where
a mount is not possible. Each case asserts the exit code, the one line on stderr, that no
temporary file or partial release/pointer is left, and the audit row saying the operation failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import CONSOLE, REPO, init_site, make_tree, run_console, run_json, trust_file

CHANNEL = "production"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte; the filler file (remove it to free the space)."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        for size in (65536, 1):  # then the last partial block, byte by byte
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * size)
    return filler


def _one_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp" in p.name]


def _audit(site: Path, verb: str) -> list[str]:
    with sqlite3.connect(site / "state.db") as db:
        return [r[0] for r in db.execute("select outcome from audit where verb = ? order by id", [verb])]


def _big_tree(root: Path) -> Path:
    return make_tree(root, {"big.bin": os.urandom(3 << 20), "small.txt": "small"})


def test_publish_onto_a_full_disk(tmp_path, small_disk):
    site = tmp_path / "site"
    run_console(site, "init", "--store", str(small_disk / "store"), check=0)
    proc = run_console(site, "publish", "--name", "demo", "--image", f"x86_64={_big_tree(tmp_path / 'tree')}")
    assert proc.returncode == 1
    line = _one_line(proc)
    assert line.startswith("console: disk full writing ") and "no space left" in line, line
    store = small_disk / "store"
    assert list((store / "releases").iterdir()) == []
    assert _temp_files(store) == []
    assert _audit(site, "publish")[-1].startswith("error: disk full")
    # Space back: the same publish completes.
    small = make_tree(tmp_path / "small", {"a.txt": "a"})
    rid = run_json(site, "publish", "--name", "demo", "--image", f"x86_64={small}")["release_id"]  # type: ignore[index]
    assert (store / "releases" / f"{rid[7:]}.json").exists()


def test_promote_onto_a_full_disk(tmp_path, small_disk):
    site = tmp_path / "site"
    run_console(site, "init", "--store", str(small_disk / "store"), check=0)
    ids = []
    for v in ("one", "two"):
        tree = make_tree(tmp_path / v, {f"{v}.txt": v})
        ids.append(run_json(site, "publish", "--name", "demo", "--image", f"x86_64={tree}")["release_id"])  # type: ignore[index]
    run_json(site, "promote", ids[0], "--channel", CHANNEL, "--create")
    pointer = small_disk / "store" / "channels" / f"{CHANNEL}.json"
    before = pointer.read_bytes()
    filler = _fill(small_disk)
    proc = run_console(site, "promote", ids[1], "--channel", CHANNEL, "--create")
    assert proc.returncode == 1
    assert _one_line(proc).startswith("console: disk full writing "), proc.stderr
    assert pointer.read_bytes() == before
    assert not (small_disk / "store" / "channels" / CHANNEL / "2.json").exists()
    assert _temp_files(small_disk / "store") == []
    assert _audit(site, "promote")[-1].startswith("error: disk full")
    filler.unlink()
    assert run_json(site, "promote", ids[1], "--channel", CHANNEL, "--create")["version"] == 2  # type: ignore[index]


def test_hydrate_onto_a_full_disk(tmp_path, small_disk):
    site = init_site(tmp_path / "site")
    small = make_tree(tmp_path / "small", {"a.txt": "a"})
    r1 = run_json(site, "publish", "--name", "demo", "--image", f"x86_64={small}")["release_id"]  # type: ignore[index]
    run_json(site, "promote", r1, "--channel", CHANNEL, "--create")
    trust = trust_file(site)
    node = small_disk / "node"
    hydrate = [
        "node", "hydrate", "--root", str(node), "--store", str(site / "store"),
        "--trust", str(trust), "--channel", CHANNEL, "--json",
    ]  # fmt: skip
    run_console(None, *hydrate, check=0)
    first = os.readlink(node / "current" / CHANNEL)
    r2 = run_json(site, "publish", "--name", "demo", "--image", f"x86_64={_big_tree(tmp_path / 'tree')}")["release_id"]  # type: ignore[index]
    run_json(site, "promote", r2, "--channel", CHANNEL, "--create")
    proc = run_console(None, *hydrate)
    assert proc.returncode == 1
    line = _one_line(proc)
    assert line.startswith("console: ") and "disk full" in line, line
    assert os.readlink(node / "current" / CHANNEL) == first  # not switched
    assert _temp_files(node) == []


def _limited(fsize: int):
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return limit


def test_publish_past_the_file_size_limit_is_disk_full_too(tmp_path):
    """EFBIG (RLIMIT_FSIZE in the child) is reported like ENOSPC: no mount needed."""
    site = init_site(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    tree = _big_tree(tmp_path / "tree")
    cmd = [*CONSOLE, "--headless", "--site", str(site), "publish", "--name", "demo", "--image", f"x86_64={tree}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, preexec_fn=_limited(1 << 20))
    assert proc.returncode == 1, proc.stderr
    line = _one_line(proc)
    assert line.startswith("console: disk full writing ") and "file size limit" in line, line
    assert list((site / "store" / "releases").iterdir()) == []
    assert _temp_files(site / "store") == []
    assert _audit(site, "publish")[-1].startswith("error: disk full")
    assert json.loads(run_console(site, "releases", "--json", check=0).stdout) == []
