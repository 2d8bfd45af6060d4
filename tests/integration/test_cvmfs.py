"""CVMFS delivery against the stand-in ``cvmfs_server`` on a real read-only bind mount.

Publish, promote, rollback, sync, status and gc through the real CLI; failures at each step of the
transaction; a killed publish recovered by ``cvmfs sync``; the lock; the node side (env, verify,
smoke) reading the read-only mount in place.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from fixtures.cvmfs import CvmfsRepo
from fixtures.sshd import SshdServer
from helpers import (
    CONSOLE,
    REPO,
    exported,
    promote,
    publish,
    run_console,
    run_json,
    sample_tree,
    set_config,
    tree_listing,
    trust_file,
)


def _rel(repo: CvmfsRepo, rid: str) -> Path:
    return repo.depot / "releases" / rid[7:]


def _wait_for(predicate, what: str, deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    while not predicate():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_publish_writes_expanded_release_in_a_transaction(site_dir: Path, tmp_path: Path, cvmfs_repo: CvmfsRepo):
    repo = cvmfs_repo
    repo.configure(site_dir)
    rid = publish(site_dir, sample_tree(tmp_path / "a"))
    rows = run_json(site_dir, "cvmfs", "publish", rid[7:15], "--repo", repo.name)
    assert [(r["target"], r["state"], r["release"]) for r in rows] == [(repo.name, "published", rid)]
    assert repo.verbs() == ["transaction", "publish"] and not repo.in_transaction()
    assert repo.read_only() and repo.revision() == 1

    rel = _rel(repo, rid)
    # the image is exactly what export writes, and release.json is the stored envelope
    assert tree_listing(rel / "x86_64") == exported(site_dir, rid, tmp_path / "export")
    assert (rel / "release.json").read_bytes() == (site_dir / "store" / "releases" / f"{rid[7:]}.json").read_bytes()
    assert (rel / ".cvmfscatalog").read_bytes() == b""
    assert (rel / "depot.env").read_text().splitlines()[2] == "images\tx86_64"
    assert os.access(repo.mount / "depot-init.sh", os.X_OK)
    # no hard links; symlinks relative and inside the image
    for dirpath, dirnames, filenames in os.walk(repo.mount):
        for name in filenames + dirnames:
            p = Path(dirpath) / name
            st = p.lstat()
            if p.is_symlink():
                target = os.readlink(p)
                assert not target.startswith("/")
                assert (p.parent / target).resolve().is_relative_to(rel / "x86_64"), p
            elif p.is_file():
                assert st.st_nlink == 1, p

    # already present: no transaction at all
    again = run_json(site_dir, "cvmfs", "publish", rid, "--json")
    assert again[0]["state"] == "present" and again[0]["commands"] == []
    assert repo.verbs() == ["transaction", "publish"]


def test_failure_at_any_step_leaves_the_repository_as_it_was(site_dir: Path, tmp_path: Path, cvmfs_repo: CvmfsRepo):
    repo = cvmfs_repo
    repo.configure(site_dir)
    first = publish(site_dir, sample_tree(tmp_path / "a"), label="a")
    run_console(site_dir, "cvmfs", "publish", first, check=0)
    before = tree_listing(repo.mount)
    rid = publish(site_dir, sample_tree(tmp_path / "b", "b"), label="b")

    repo.fail("publish", once=True)
    proc = run_console(site_dir, "cvmfs", "publish", rid, check=1)
    assert "'" in proc.stderr and "publish" in proc.stderr and "failed (exit 1)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert repo.verbs()[-3:] == ["transaction", "publish!", "abort"]
    assert tree_listing(repo.mount) == before and repo.read_only() and not repo.in_transaction()

    repo.fail("transaction", once=True)
    run_console(site_dir, "cvmfs", "publish", rid, check=1)
    assert repo.verbs()[-1] == "transaction!" and tree_listing(repo.mount) == before

    # the body fails (an object is gone from the store): aborted, nothing left behind
    objects = sorted((site_dir / "store" / "objects").rglob("*"))
    victim = next(p for p in objects if p.is_file())
    saved = victim.read_bytes()
    victim.unlink()
    proc = run_console(site_dir, "cvmfs", "publish", rid)
    victim.write_bytes(saved)
    if proc.returncode != 0:  # the object belonged to this release
        assert repo.verbs()[-2:] == ["transaction", "abort"]
        assert tree_listing(repo.mount) == before and not repo.in_transaction()

    run_console(site_dir, "cvmfs", "publish", rid, check=0)
    assert (_rel(repo, rid) / "release.json").exists() and repo.read_only()


def test_promote_rollback_flip_targets_and_sync_repairs(site_dir: Path, tmp_path: Path, cvmfs_repo: CvmfsRepo):
    repo = cvmfs_repo
    repo.configure(site_dir)
    a = publish(site_dir, sample_tree(tmp_path / "a"), label="a")
    b = publish(site_dir, sample_tree(tmp_path / "b", "b"), label="b")

    doc = promote(site_dir, a)
    assert [(r["target"], r["state"], r["changed"], r["release"]) for r in doc["cvmfs"]] == [
        (repo.name, "in line", True, a)
    ]
    # the release (not yet in the target) and the flip, each its own transaction
    assert repo.verbs() == ["transaction", "publish", "transaction", "publish"]
    link = repo.depot / "channels" / "production"
    assert os.readlink(link) == f"../releases/{a[7:]}"
    store_ptr = site_dir / "store" / "channels" / "production.json"
    assert (repo.depot / "channels" / "production.json").read_bytes() == store_ptr.read_bytes()

    proc = run_console(site_dir, "promote", b, "--channel", "production", "--create", check=0)
    assert f"cvmfs {repo.name}: production -> {b[7:19]}" in proc.stdout
    assert os.readlink(link) == f"../releases/{b[7:]}"

    # a failing target: exit 1, reported per target; the store pointer moved anyway
    repo.fail("transaction")
    proc = run_console(site_dir, "rollback", "--channel", "production", "--json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["release"] == a and doc["version"] == 3
    assert [(r["state"], r["ok"]) for r in doc["cvmfs"]] == [("failed", False)]
    assert os.readlink(link) == f"../releases/{b[7:]}"  # the target still shows b
    status = run_json(site_dir, "cvmfs", "status", check=1)
    (chan,) = status[0]["channels"]
    assert (chan["state"], chan["store_version"], chan["target_version"]) == ("failed", 3, 2)
    assert "transaction" in chan["error"]

    repo.clear_failures()
    rows = run_json(site_dir, "cvmfs", "sync")
    assert [(r["channel"], r["state"], r["changed"]) for r in rows] == [("production", "in line", True)]
    assert os.readlink(link) == f"../releases/{a[7:]}"
    assert (repo.depot / "channels" / "production.json").read_bytes() == store_ptr.read_bytes()
    status = run_json(site_dir, "cvmfs", "status")
    assert status[0]["channels"][0]["state"] == "in line"
    assert status[0]["revision"] == repo.revision() and sorted(status[0]["releases"]) == sorted([a, b])
    # in line: sync changes nothing
    n = len(repo.calls())
    assert run_json(site_dir, "cvmfs", "sync")[0]["changed"] is False and len(repo.calls()) == n


def test_killed_publish_is_recovered_by_sync_and_the_lock_holds(site_dir: Path, tmp_path: Path, cvmfs_repo: CvmfsRepo):
    repo = cvmfs_repo
    repo.configure(site_dir)
    rid = publish(site_dir, sample_tree(tmp_path / "a"))
    (repo.state / "hang").write_text("publish")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [*CONSOLE, "--headless", "--site", str(site_dir), "cvmfs", "publish", rid],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # kill -9 the console and the cvmfs_server it runs, as a crash would
    )
    try:
        _wait_for(lambda: any(c.get("note") == "hanging" for c in repo.calls()), "the publish step")
        # one publish at a time per repository
        busy = run_console(site_dir, "cvmfs", "publish", rid, check=3)
        assert "another publish, sync or gc is running" in busy.stderr
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        (repo.state / "hang").unlink()
        (repo.state / "hang.release").write_text("")
    assert repo.in_transaction()  # it was open when killed
    promote(site_dir, rid)  # the flip first aborts the orphan, then publishes the release and flips
    assert "abort" in repo.verbs() and not repo.in_transaction() and repo.read_only()
    rows = run_json(site_dir, "cvmfs", "sync")
    assert rows[0]["state"] == "in line"
    assert os.readlink(repo.depot / "channels" / "production") == f"../releases/{rid[7:]}"


def test_gc_removes_releases_no_channel_needs_in_its_own_transaction(
    site_dir: Path, tmp_path: Path, cvmfs_repo: CvmfsRepo
):
    repo = cvmfs_repo
    repo.configure(site_dir)
    ids = [publish(site_dir, sample_tree(tmp_path / v, v), label=v) for v in "abcd"]
    for rid in ids:
        run_console(site_dir, "cvmfs", "publish", rid, check=0)
    promote(site_dir, ids[1])
    promote(site_dir, ids[2])
    dry = run_json(site_dir, "cvmfs", "gc", "--dry-run", "--keep", "2")
    assert sorted(dry[0]["removed"]) == sorted([ids[0], ids[3]]) and dry[0]["commands"] == []
    assert all(_rel(repo, r).exists() for r in ids)
    n = len(repo.calls())
    rows = run_json(site_dir, "cvmfs", "gc", "--keep", "2")
    assert sorted(rows[0]["removed"]) == sorted([ids[0], ids[3]])
    assert repo.verbs()[n:] == ["transaction", "publish"]
    assert [r for r in ids if _rel(repo, r).exists()] == [ids[1], ids[2]]
    # keep 1: the previous release goes too, the channel's stays
    rows = run_json(site_dir, "cvmfs", "gc", "--keep", "1")
    assert rows[0]["removed"] == [ids[1]] and _rel(repo, ids[2]).exists()
    # a failing gc (publish step) is aborted: the release is still there
    run_console(site_dir, "cvmfs", "publish", ids[0], check=0)
    repo.fail("publish")
    run_console(site_dir, "cvmfs", "gc", "--keep", "1", check=1)
    assert _rel(repo, ids[0]).exists() and repo.verbs()[-1] == "abort" and repo.read_only()


def test_ingest_mode_streams_the_release(site_dir: Path, tmp_path: Path, cvmfs_repo: CvmfsRepo):
    repo = cvmfs_repo
    repo.configure(site_dir, repo.target(mode="ingest"))
    rid = publish(site_dir, sample_tree(tmp_path / "a"))
    rows = run_json(site_dir, "cvmfs", "publish", rid)
    assert rows[0]["state"] == "published"
    assert repo.verbs()[0] == "ingest"
    assert tree_listing(_rel(repo, rid) / "x86_64") == exported(site_dir, rid, tmp_path / "export")
    assert repo.read_only() and repo.revision() >= 1


def test_show_says_which_targets_hold_the_release(site_dir: Path, tmp_path: Path, cvmfs_repo: CvmfsRepo):
    repo = cvmfs_repo
    a = publish(site_dir, sample_tree(tmp_path / "a"))
    b = publish(site_dir, sample_tree(tmp_path / "b", "b"))
    plain = run_console(site_dir, "show", a).stdout
    assert "cvmfs" not in plain and "cvmfs" not in run_json(site_dir, "show", a)  # no targets: as before
    repo.configure(site_dir)
    run_console(site_dir, "cvmfs", "publish", a, check=0)
    assert run_json(site_dir, "show", a)["cvmfs"] == [{"target": repo.name, "repo": repo.name, "present": True}]
    assert run_json(site_dir, "show", b)["cvmfs"] == [{"target": repo.name, "repo": repo.name, "present": False}]
    assert f"\n  cvmfs    {repo.name}\n" in run_console(site_dir, "show", a).stdout
    assert f"\n  cvmfs    - (not in {repo.name})\n" in run_console(site_dir, "show", b).stdout


def test_node_env_and_verify_from_the_read_only_mount(site_dir: Path, tmp_path: Path, cvmfs_repo: CvmfsRepo):
    repo = cvmfs_repo
    repo.configure(site_dir)
    a = publish(site_dir, make_python_tree(tmp_path / "a", "a"), label="a")
    b = publish(site_dir, make_python_tree(tmp_path / "b", "b"), label="b")
    promote(site_dir, a)
    trust = trust_file(site_dir)
    node = tmp_path / "node"
    base = ["--root", str(node), "--trust", str(trust), "--mount", str(repo.depot), "--channel", "production"]

    doc = run_json(None, "node", "verify", *base, "--deep")
    assert doc["release"] == a and doc["version"] == 1 and doc["ok"]
    assert [(i["arch"], i["ok"]) for i in doc["images"]] == [("x86_64", True)]

    writable = tmp_path / "w"
    env = run_json(
        None,
        "node",
        "env",
        "--mount",
        str(repo.depot),
        "--channel",
        "production",
        env={"DEPOT_WRITABLE": str(writable)},
    )
    assert env["DEPOT_IMAGE_DIR"] == str(_rel(repo, a) / "x86_64")
    assert env["PYTHONPATH"] == str(_rel(repo, a) / "x86_64" / "lib" / "python")
    # depot-init.sh gives the same exports
    for shell in ("dash", "bash"):
        out = subprocess.run(
            [shell, str(repo.mount / "depot-init.sh"), "--env", "production"],
            capture_output=True,
            text=True,
            env=dict(os.environ, DEPOT_WRITABLE=str(writable)),
            check=True,
        ).stdout
        shell_env = dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines())
        assert {k: v.strip("'") for k, v in shell_env.items()} == env

    # promote b, then a replayed pointer (version 1 put back by hand) is refused
    promote(site_dir, b)
    run_json(None, "node", "verify", *base)
    old = site_dir / "store" / "channels" / "production" / "1.json"
    chan = repo.data / "depot" / "channels"
    (chan / "production.json").write_bytes(old.read_bytes())
    os.unlink(chan / "production")
    os.symlink(f"../releases/{a[7:]}", chan / "production")
    proc = run_console(None, "node", "verify", *base, check=4)
    assert "older than accepted version 2" in proc.stderr
    run_json(site_dir, "cvmfs", "sync")  # back in line

    # an expired pointer is refused
    proc = run_console(None, "node", "verify", *base, env={"DEPOT_CONSOLE_NOW": "2999-01-01T00:00:00Z"}, check=4)
    assert "expired" in proc.stderr
    # a tampered image: --deep says so (exit 1)
    victim = repo.data / "depot" / "releases" / b[7:] / "x86_64" / "lib" / "python" / "demo_mod.py"
    victim.write_text("tampered = True\n")
    doc = run_json(None, "node", "verify", *base, "--deep", check=1)
    assert not doc["ok"] and "tree hashes to" in doc["images"][0]["problem"]
    assert repo.read_only() and not (node / "releases").exists()  # nothing hydrated, nothing copied


def make_python_tree(root: Path, variant: str) -> Path:
    pkg = root / "lib" / "python"
    pkg.mkdir(parents=True)
    (pkg / "demo_mod.py").write_text(f"VARIANT = {variant!r}\n")
    return root


def test_python_depot_smoke_with_baseline_straight_from_the_mount(
    site_dir: Path, tmp_path: Path, cvmfs_repo: CvmfsRepo, find_links: Path
):
    repo = cvmfs_repo
    repo.configure(site_dir)
    req = tmp_path / "jetpy" / "requirements.txt"
    req.parent.mkdir()
    req.write_text("purepkg==1.0\nvecext==1.0\n")
    row = run_json(
        site_dir,
        "build",
        str(req),
        "--builder",
        "python",
        "--arch",
        "x86_64,x86_64_v3",
        "--publish",
        "--promote",
        "production",
        "--create",
        "--name",
        "jetpy",
        "--option",
        f"find_links={find_links}",
        "--option",
        "no_index=true",
        "--option",
        "no_build_isolation=yes",
    )
    assert row["status"] == "succeeded", row
    release = row["release"]
    # the promote inside the build does not run the CLI's flip: sync brings the target in line
    rows = run_json(site_dir, "cvmfs", "sync")
    assert rows[0]["state"] == "in line" and rows[0]["release"] == release
    before = tree_listing(repo.mount)
    doc = run_json(
        None,
        "node",
        "smoke",
        "--mount",
        str(repo.depot),
        "--channel",
        "production",
        "--baseline",
        env={"DEPOT_ARCH": "x86_64_v3"},
    )
    assert doc["ok"] and doc["exit_code"] == 0 and doc["baseline_exit_code"] == 0, doc
    assert doc["image"] == "x86_64_v3" and doc["release"] == release
    assert doc["fingerprint"] and doc["fingerprint"]["count"] > 0
    assert tree_listing(repo.mount) == before  # nothing written under the mount
    assert doc["baseline_s"] > 0 and doc["reduction"] is not None
    assert any("__pycache__" in p for p in before)  # the delivered caches, used in place


def test_fleet_check_smokes_the_read_only_mount_on_every_node(
    site_dir: Path, tmp_path: Path, cvmfs_repo: CvmfsRepo, sshd: SshdServer
):
    """``fleet check NODESET --smoke --mount DIR``: each node of the loopback fleet runs the real
    ``console node smoke --mount DIR`` against the stand-in repository's read-only mount."""
    repo = cvmfs_repo
    repo.configure(site_dir)
    rid = publish(site_dir, make_python_tree(tmp_path / "a", "a"), smoke="python3 -c 'import demo_mod'")
    promote(site_dir, rid)
    assert (repo.depot / "channels" / "production").is_symlink()
    wrapper = tmp_path / "remote-console"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m console.cli "$@"\n')
    wrapper.chmod(0o755)
    set_config(site_dir, "fleet", "ssh_config", sshd.config_path)
    set_config(site_dir, "node", "remote_console", str(wrapper))
    before = tree_listing(repo.mount)
    proc = run_console(
        site_dir,
        "fleet",
        "check",
        "node[01-02]",
        "--smoke",
        "--mount",
        str(repo.depot),
        "--channel",
        "production",
        "--root",
        str(tmp_path / "noderoot"),
        "--json",
    )
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0, (doc, proc.stderr)
    assert doc["mount"] == str(repo.depot)
    assert [(n["name"], n["status"], n["stage"]) for n in doc["nodes"]] == [
        ("node01", "ok", "smoke"),
        ("node02", "ok", "smoke"),
    ]
    for n in doc["nodes"]:
        assert n["smoke"]["ok"] is True and n["smoke"]["release"] == rid and n["hydrate"] is None
        assert n["smoke"]["image"] == "x86_64" and n["detail"].startswith("smoke ok ")
    assert tree_listing(repo.mount) == before and repo.read_only()  # read in place, nothing written
    assert not (tmp_path / "noderoot" / "releases").exists()  # nothing hydrated

    # --mount goes with --smoke only, and not with --hydrate
    bad = run_console(site_dir, "fleet", "check", "node01", "--mount", str(repo.depot), "--channel", "production")
    assert bad.returncode == 2 and "--mount needs --smoke" in bad.stderr
    bad = run_console(
        site_dir, "fleet", "check", "node01", "--smoke", "--hydrate", "--mount", "/x", "--channel", "production"
    )
    assert bad.returncode == 2 and "does not go with --hydrate" in bad.stderr
