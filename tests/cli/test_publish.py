"""Publish, export, dedupe, hash cache, hooks and the catalogue, through the real CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

from helpers import make_tree, run_console, run_json, sample_tree, set_config, tree_listing


def test_init_creates_site_files(tmp_path: Path) -> None:
    site = tmp_path / "site"
    out = run_json(site, "init")
    assert (site / "console.toml").is_file()
    key = site / "keys" / "signing.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert json.loads((site / "store" / "store.json").read_bytes())["schema"] == "depot-store/1"
    db = sqlite3.connect(site / "state.db")
    assert db.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert db.execute("pragma user_version").fetchone()[0] >= 1
    assert out["key"].startswith("sha256:")
    keys = run_json(site, "keys", "list")
    assert [(k["id"], k["roles"], k["state"]) for k in keys] == [(out["key"], ["release", "channel"], "signing")]
    again = run_console(site, "init")
    assert again.returncode == 2 and again.stderr == f"console: a site already exists at {site}\n"


def test_round_trip_publish_export_equals_source(site_dir: Path, tmp_path: Path) -> None:
    src = sample_tree(tmp_path / "src")
    res = run_json(
        site_dir,
        "publish",
        "--name",
        "jetreco",
        "--label",
        "2026.11-1",
        "--image",
        f"x86_64={src}",
        "--image",
        f"x86_64_v3={src}",
    )
    rid = res["release_id"]
    assert res["files"] == 8 and res["new_objects"] == 4  # 4 distinct files shared by both images
    for arch in ("x86_64", "x86_64_v3"):
        out = tmp_path / f"out-{arch}"
        run_console(site_dir, "export", rid[7:15], "--arch", arch, str(out), check=0)
        assert tree_listing(out) == tree_listing(src)
    assert os.readlink(tmp_path / "out-x86_64" / "lib" / "libx.so") == "libx.so.1"
    assert (tmp_path / "out-x86_64" / "share" / "empty" / "nested").is_dir()
    assert os.access(tmp_path / "out-x86_64" / "bin" / "tool", os.X_OK)
    assert not os.access(tmp_path / "out-x86_64" / "share" / "doc" / "README", os.X_OK)


def test_second_publish_writes_nothing_new_and_uses_cache(site_dir: Path, tmp_path: Path) -> None:
    src = sample_tree(tmp_path / "src")
    os.utime(src / "share/doc/README", (1_600_000_000, 1_600_000_000))  # old mtimes are cacheable
    for p in src.rglob("*"):
        if p.is_file() and not p.is_symlink():
            os.utime(p, (1_600_000_000, 1_600_000_000))
    first = run_json(site_dir, "publish", "--name", "n", "--image", f"x86_64={src}")
    second = run_json(site_dir, "publish", "--name", "n", "--label", "again", "--image", f"x86_64={src}")
    assert first["new_objects"] == 4 and first["hashed_files"] == 4
    assert second["new_objects"] == 0 and second["new_bytes"] == 0
    assert second["reused_objects"] == 4 and second["cached_files"] == 4 and second["hashed_files"] == 0
    assert second["release_id"] != first["release_id"]
    # A changed file is noticed even though the cache has its path.
    (src / "data/a.txt").write_text("changed")
    third = run_json(site_dir, "publish", "--name", "n", "--label", "3", "--image", f"x86_64={src}")
    assert third["hashed_files"] == 1 and third["new_objects"] == 1


def test_object_bytes_on_disk_are_zstd_named_by_uncompressed_hash(site_dir: Path, tmp_path: Path) -> None:
    import hashlib

    import zstandard

    src = make_tree(tmp_path / "src", {"f": b"payload" * 100})
    run_json(site_dir, "publish", "--name", "n", "--image", f"x86_64={src}")
    h = hashlib.sha256(b"payload" * 100).hexdigest()
    obj = site_dir / "store" / "objects" / h[:2] / h[2:]
    assert zstandard.ZstdDecompressor().decompressobj().decompress(obj.read_bytes()) == b"payload" * 100


def test_releases_show_and_ids(site_dir: Path, tmp_path: Path) -> None:
    src = sample_tree(tmp_path / "src")
    rid = run_json(site_dir, "publish", "--name", "jetreco", "--label", "L1", "--image", f"x86_64={src}")["release_id"]
    rows = run_json(site_dir, "releases")
    assert [(r["id"], r["name"], r["label"], r["images"]) for r in rows] == [(rid, "jetreco", "L1", ["x86_64"])]
    for ref in (rid, rid[7:], rid[7:11], rid[7:11].upper()):
        assert run_json(site_dir, "show", ref)["id"] == rid
    human = run_console(site_dir, "show", rid[7:13], check=0).stdout
    assert f"release {rid}" in human and "x86_64" in human
    missing = run_console(site_dir, "show", "ffff" if not rid[7:].startswith("ffff") else "eeee")
    assert missing.returncode == 2 and missing.stderr.startswith("console: no release matches")
    assert run_console(site_dir, "show", "abc").returncode == 2  # too short
    assert run_console(site_dir, "show", "../../etc").returncode == 2


def test_julia_environment_packages_go_into_the_manifest(site_dir: Path, tmp_path: Path) -> None:
    manifest = (
        'julia_version = "1.10.4"\nmanifest_format = "2.0"\n\n'
        '[[deps.JetReconstruction]]\nuuid = "44e8cb2c-dfab-4825-9c70-d4808a591196"\nversion = "0.4.3"\n\n'
        '[[deps.LinearAlgebra]]\nuuid = "37e2e46d-f89d-539d-b4ee-838fcccc9c8e"\n'
    )
    src = make_tree(
        tmp_path / "src", {"environments/v1.10/Manifest.toml": manifest, "environments/v1.10/Project.toml": "[deps]\n"}
    )
    rid = run_json(site_dir, "publish", "--name", "j", "--image", f"x86_64_v3={src}")["release_id"]
    doc = run_json(site_dir, "show", rid)
    names = [p["name"] for p in doc["source"]["packages"]]
    assert names == ["JetReconstruction", "LinearAlgebra"]
    assert doc["source"]["packages"][0]["version"] == "0.4.3"
    assert set(doc["source"]["files"]) == {"Manifest.toml", "Project.toml"}
    assert doc["images"]["x86_64_v3"]["cpu_target"] == "x86-64-v3"


def test_hooks_pre_failure_writes_nothing_post_runs(site_dir: Path, tmp_path: Path) -> None:
    src = sample_tree(tmp_path / "src")
    marker = tmp_path / "post.txt"
    set_config(site_dir, "publish", "pre_publish", "echo no transaction >&2; exit 7")
    before = sorted(p.relative_to(site_dir / "store") for p in (site_dir / "store").rglob("*"))
    proc = run_console(site_dir, "publish", "--name", "n", "--image", f"x86_64={src}")
    assert proc.returncode == 1
    assert proc.stderr == "console: pre_publish hook failed (exit 7): no transaction\n"
    after = sorted(p.relative_to(site_dir / "store") for p in (site_dir / "store").rglob("*"))
    assert after == before
    set_config(site_dir, "publish", "pre_publish", "")
    set_config(site_dir, "publish", "post_publish", f"echo $DEPOT_RELEASE > {marker}")
    rid = run_json(site_dir, "publish", "--name", "n", "--image", f"x86_64={src}")["release_id"]
    assert marker.read_text().strip() == rid


def test_audit_rows_for_state_changing_verbs(site_dir: Path, tmp_path: Path) -> None:
    src = sample_tree(tmp_path / "src")
    run_json(site_dir, "publish", "--name", "n", "--image", f"x86_64={src}")
    run_console(site_dir, "publish", "--name", "n", "--image", f"nonsense={src}")
    run_json(site_dir, "gc")
    db = sqlite3.connect(site_dir / "state.db")
    rows = db.execute("select verb, target, outcome, actor from audit order by id").fetchall()
    assert [(r[0], r[2]) for r in rows[:4]] == [
        ("init", "ok"),
        ("publish", "ok"),
        ("publish", rows[2][2]),
        ("gc", "ok"),
    ]
    assert rows[2][2].startswith("error: unknown micro-architecture 'nonsense'")
    assert all("@" in r[3] for r in rows)


def test_progress_lines_on_stderr(site_dir: Path, tmp_path: Path) -> None:
    src = sample_tree(tmp_path / "src")
    proc = run_console(site_dir, "publish", "--name", "n", "--image", f"x86_64={src}", "--progress", check=0)
    assert "hash: 4/4" in proc.stderr and "write: 4/4" in proc.stderr
