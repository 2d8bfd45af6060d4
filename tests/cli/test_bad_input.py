"""Bad input: one clear line on stderr, the documented exit code, nothing half-written."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from core.model.digest import canonical_json, digest_bytes
from core.model.manifest import Entry, tree_bytes
from core.store.local import LocalStore
from core.trust.signing import RELEASE_TYPE, load_key, make_envelope

from helpers import make_tree, run_console, run_json, sample_tree, set_config


def store_snapshot(site: Path) -> list[str]:
    return sorted(str(p.relative_to(site / "store")) for p in (site / "store").rglob("*"))


def assert_refused(site: Path, proc: subprocess.CompletedProcess, code: int, starts: str) -> None:
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("console: "), proc.stderr
    assert starts in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def _publish_refused(site: Path, src: Path, starts: str) -> None:
    before = store_snapshot(site)
    proc = run_console(site, "publish", "--name", "n", "--image", f"x86_64={src}")
    assert_refused(site, proc, 2, starts)
    assert store_snapshot(site) == before


def test_socket_refused(site_dir: Path, tmp_path: Path) -> None:
    src = sample_tree(tmp_path / "src")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(src / "sock"))
    try:
        _publish_refused(site_dir, src, "sock is a socket: only regular files, directories and symlinks")
    finally:
        s.close()


def test_device_and_fifo_refused(site_dir: Path, tmp_path: Path) -> None:
    src = sample_tree(tmp_path / "src")
    os.mknod(src / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    _publish_refused(site_dir, src, "null is a character device")
    os.unlink(src / "null")
    os.mkfifo(src / "fifo")
    _publish_refused(site_dir, src, "fifo is a named pipe")


@pytest.mark.parametrize("target", ["../../etc/passwd", "/etc/passwd", "../.."])
def test_symlink_outside_tree_refused(site_dir: Path, tmp_path: Path, target: str) -> None:
    src = sample_tree(tmp_path / "src")
    os.symlink(target, src / "lib" / "escape")
    _publish_refused(site_dir, src, "lib/escape")


def test_non_utf8_name_refused(site_dir: Path, tmp_path: Path) -> None:
    src = sample_tree(tmp_path / "src")
    open(os.fsencode(src) + b"/bad\xffname", "wb").close()
    _publish_refused(site_dir, src, "not valid UTF-8")


def test_unknown_arch_and_bad_image_syntax(site_dir: Path, tmp_path: Path) -> None:
    src = sample_tree(tmp_path / "src")
    assert_refused(
        site_dir,
        run_console(site_dir, "publish", "--name", "n", "--image", f"pentium9={src}"),
        2,
        "unknown micro-architecture 'pentium9'",
    )
    assert_refused(
        site_dir, run_console(site_dir, "publish", "--name", "n", "--image", str(src)), 2, "--image expects ARCH=DIR"
    )
    assert_refused(
        site_dir,
        run_console(site_dir, "publish", "--name", "a/b", "--image", f"x86_64={src}"),
        2,
        "invalid release name",
    )
    assert_refused(
        site_dir,
        run_console(site_dir, "publish", "--name", "n", "--image", "x86_64=/nonexistent"),
        2,
        "/nonexistent: no such directory",
    )


def _as_nobody(argv: list[str], errfile: Path) -> int:
    """Run ``console.cli.main(argv)`` in a forked child that dropped to uid/gid 65534 (nobody).

    pyenv's interpreter and site-packages live under /root, which nobody cannot read, and a clean
    clone may sit in a 0700 temp directory: so import every module of ``core`` and ``console``
    (but the TUI) first, the console loading many lazily, then fork instead of exec.
    """
    import importlib
    import pkgutil

    import archspec.cpu
    import sqlite_utils  # noqa: F401 (the console loads these lazily: nobody could not, later)
    import tomli_w  # noqa: F401
    from cryptography.hazmat.primitives import serialization  # noqa: F401

    import console
    import core
    from console.cli import build_parser

    for package in (core, console):
        for mod in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not mod.name.startswith("console.tui"):
                importlib.import_module(mod.name)
    build_parser()
    assert archspec.cpu.TARGETS["x86_64_v3"]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 99
        try:
            os.setgid(65534)
            os.setuid(65534)
            sys.stderr = open(errfile, "w")  # pytest's capture objects are not fd 2
            sys.stdout = open(os.devnull, "w")
            from console.cli import main

            code = main(argv)
            sys.stderr.flush()
        except BaseException:
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_unreadable_file_refused_for_an_unprivileged_operator(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test drops privileges to 'nobody' and must run as root (CI does)")
    base = Path(tempfile.mkdtemp(prefix="depot-nobody-"))
    os.chmod(base, 0o777)
    site, src = base / "site", sample_tree(base / "src")
    run_console(site, "init", check=0)
    for p in [site, *site.rglob("*")]:
        os.chown(p, 65534, 65534, follow_symlinks=False)
    os.chmod(src / "share" / "doc" / "README", 0o000)
    before = store_snapshot(site)
    err = base / "stderr.txt"
    code = _as_nobody(["--headless", "--site", str(site), "publish", "--name", "n", "--image", f"x86_64={src}"], err)
    proc = subprocess.CompletedProcess([], code, "", err.read_text())
    assert_refused(site, proc, 2, "README: cannot read file (permission denied)")
    assert store_snapshot(site) == before


def test_missing_signing_key(site_dir: Path, tmp_path: Path) -> None:
    src = sample_tree(tmp_path / "src")
    (site_dir / "keys" / "signing.pem").unlink()
    before = store_snapshot(site_dir)
    assert_refused(
        site_dir,
        run_console(site_dir, "publish", "--name", "n", "--image", f"x86_64={src}"),
        2,
        "signing.pem not found",
    )
    assert store_snapshot(site_dir) == before


def test_no_site(tmp_path: Path) -> None:
    assert_refused(tmp_path, run_console(tmp_path / "nowhere", "releases"), 2, "no site at")


# -- hand-edited or hostile store content -------------------------------------------------------


def _craft_release(site: Path, payload: dict | bytes, *, trees: list[bytes] = ()) -> str:
    """Sign ``payload`` with the site's own key and place it exactly as a publisher would."""
    store = LocalStore.open(site / "store")
    for t in trees:
        store.put_object(digest_bytes(t), t)
    data = payload if isinstance(payload, bytes) else canonical_json(payload)
    rid = digest_bytes(data)
    env = make_envelope(RELEASE_TYPE, data, [load_key(site / "keys" / "signing.pem")])
    store.write_file(f"releases/{rid[7:]}.json", env)
    return rid


def _payload(root: str, **over) -> dict:
    doc = {
        "type": "depot-release",
        "schema": 1,
        "name": "n",
        "label": "",
        "created": "2026-11-21T12:00:00Z",
        "parent": None,
        "builder": {"kind": "tree"},
        "source": {"files": {}, "packages": []},
        "images": {"x86_64": {"root": root, "files": 0, "bytes": 0, "cpu_target": ""}},
        "smoke": None,
    }
    doc.update(over)
    return doc


@pytest.mark.parametrize(
    "change, message",
    [
        ({"schema": 2}, "unsupported manifest schema 2"),
        ({"type": "something"}, "not a depot-release manifest"),
        ({"images": "many"}, "images must be a non-empty object"),
        ({"name": 7}, "field 'name' must be a string"),
        ({"extra": 1}, "unknown manifest field(s) ['extra']"),
        ({"parent": "sha256:xyz"}, "parent 'sha256:xyz' is not a sha256 digest"),
    ],
)
def test_malformed_manifests(site_dir: Path, change: dict, message: str) -> None:
    empty = tree_bytes([])
    rid = _craft_release(site_dir, _payload(digest_bytes(empty), **change), trees=[empty])
    assert_refused(site_dir, run_console(site_dir, "show", rid), 2, message)


def test_bad_json_envelope(site_dir: Path) -> None:
    rid = "sha256:" + "ab" * 32
    (site_dir / "store" / "releases" / f"{rid[7:]}.json").write_text("{not json")
    assert_refused(site_dir, run_console(site_dir, "show", rid), 2, "not valid JSON")


def test_manifest_over_the_size_limit(site_dir: Path) -> None:
    empty = tree_bytes([])
    rid = _craft_release(site_dir, _payload(digest_bytes(empty), label="x" * 200), trees=[empty])
    set_config(site_dir, "publish", "max_manifest_bytes", 256)
    assert_refused(site_dir, run_console(site_dir, "show", rid), 2, "manifest larger than the 256-byte limit")


@pytest.mark.parametrize("name", ["..", "a/b", "x" * 300])
def test_tree_with_bad_entry_names(site_dir: Path, tmp_path: Path, name: str) -> None:
    blob = b"data"
    tree = canonical_json(
        {"entries": [{"name": name, "type": "file", "mode": 0o644, "size": 4, "digest": digest_bytes(blob)}]}
    )
    LocalStore.open(site_dir / "store").put_object(digest_bytes(blob), blob)
    rid = _craft_release(site_dir, _payload(digest_bytes(tree)), trees=[tree])
    out = tmp_path / "out"
    proc = run_console(site_dir, "export", rid, "--arch", "x86_64", str(out))
    assert_refused(site_dir, proc, 2, "invalid entry name" if len(name) < 255 else "longer than 255 bytes")
    assert not out.exists()
    ver = run_console(site_dir, "verify", rid[7:], "--json")
    assert ver.returncode == 1
    assert [p["kind"] for p in json.loads(ver.stdout)["problems"]] == ["malformed-tree"]


def test_link_escaping_in_a_crafted_tree(site_dir: Path, tmp_path: Path) -> None:
    tree = tree_bytes([Entry("evil", "link", 0o777, 16, target="../../etc/passwd")])
    rid = _craft_release(site_dir, _payload(digest_bytes(tree)), trees=[tree])
    out = tmp_path / "out"
    assert_refused(
        site_dir, run_console(site_dir, "export", rid, "--arch", "x86_64", str(out)), 2, "points outside the image"
    )
    assert not out.exists()


def test_export_into_non_empty_dir_refused(site_dir: Path, tmp_path: Path) -> None:
    src = sample_tree(tmp_path / "src")
    rid = run_json(site_dir, "publish", "--name", "n", "--image", f"x86_64={src}")["release_id"]
    target = make_tree(tmp_path / "busy", {"keep": "me"})
    assert_refused(
        site_dir,
        run_console(site_dir, "export", rid, "--arch", "x86_64", str(target)),
        2,
        "exists and is not an empty directory",
    )
    assert (target / "keep").read_text() == "me"
    assert_refused(
        site_dir, run_console(site_dir, "export", rid, "--arch", "zen3", str(tmp_path / "o")), 2, "has no image zen3"
    )
