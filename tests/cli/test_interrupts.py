"""A publish killed (kill -9) or interrupted (Ctrl-C) mid-write, and gc racing a publish.

Determinism without sleeps: publish prints one progress line per object when
``progress_interval_s = 0``; the test reads stderr until the first "write:" line and then stops
reading, so the publisher blocks on a full pipe while it is still writing objects.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

from core.model.digest import digest_bytes
from core.site.site import open_site

from helpers import CONSOLE, REPO, make_tree, run_console, run_json, set_config, tree_listing


def _many_files(root: Path, n: int = 3000) -> Path:
    return make_tree(root, {f"d{i % 30}/f{i}.txt": f"object number {i}\n" * 8 for i in range(n)})


def _start_publish(site: Path, src: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [
            *CONSOLE,
            "--headless",
            "--site",
            str(site),
            "publish",
            "--name",
            "big",
            "--image",
            f"x86_64={src}",
            "--progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _read_until_writing(proc: subprocess.Popen) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("write: "):
            return
    raise AssertionError(f"publish ended before writing objects: exit {proc.wait()}")


def test_kill_9_mid_publish_leaves_a_valid_store_and_rerun_completes(site_dir: Path, tmp_path: Path) -> None:
    set_config(site_dir, "publish", "progress_interval_s", 0)
    src = _many_files(tmp_path / "src")
    proc = _start_publish(site_dir, src)
    _read_until_writing(proc)
    proc.kill()
    proc.wait()
    store = site_dir / "store"
    assert list((store / "releases").iterdir()) == []
    assert run_json(site_dir, "verify", "--deep")["ok"] is True
    orphans = run_json(site_dir, "gc", "--dry-run")["unreferenced"]
    assert 0 < orphans < 3000
    rerun = run_json(site_dir, "publish", "--name", "big", "--image", f"x86_64={src}")
    assert rerun["reused_objects"] >= orphans and rerun["new_objects"] == 3000 - rerun["reused_objects"]
    assert run_json(site_dir, "verify", "--deep")["ok"] is True
    run_console(site_dir, "export", rerun["release_id"], "--arch", "x86_64", str(tmp_path / "out"), check=0)
    assert tree_listing(tmp_path / "out") == tree_listing(src)
    assert run_json(site_dir, "gc")["deleted"] == 0


def test_ctrl_c_mid_publish(site_dir: Path, tmp_path: Path) -> None:
    set_config(site_dir, "publish", "progress_interval_s", 0)
    src = _many_files(tmp_path / "src")
    proc = _start_publish(site_dir, src)
    _read_until_writing(proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate()
    assert proc.returncode == 130
    assert err.splitlines()[-1] == "console: interrupted"
    assert list((site_dir / "store" / "releases").iterdir()) == []
    assert run_json(site_dir, "verify")["ok"] is True
    db = sqlite3.connect(site_dir / "state.db")
    assert db.execute("select verb, outcome from audit order by id desc limit 1").fetchone() == (
        "publish",
        "interrupted",
    )


def test_gc_waits_for_a_running_publish_and_keeps_its_objects(site_dir: Path, tmp_path: Path) -> None:
    """An unreferenced object that a running publish decides to reuse must survive a concurrent gc."""
    from core.site.publish import publish

    run_json(site_dir, "publish", "--name", "n", "--image", f"x86_64={make_tree(tmp_path / 'a', {'a': 'first'})}")
    site = open_site(site_dir)
    store = site.store
    reused = b"left behind by a killed publish, reused by the next one"
    store.put_object(digest_bytes(reused), reused)  # unreferenced right now
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with store.publish_lock():  # a publish is in its critical section
        gc = subprocess.Popen(
            [*CONSOLE, "--headless", "--site", str(site_dir), "gc", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert gc.stderr is not None
        assert gc.stderr.readline() == "gc: waiting for running publishes to finish\n"
        res = publish(site, "n", {"x86_64": make_tree(tmp_path / "b", {"b": reused})})
        assert res.reused_objects == 1 and res.new_objects == 0
    out, _ = gc.communicate()
    assert gc.returncode == 0 and json.loads(out)["deleted"] == 0
    assert store.has_object(digest_bytes(reused))
    assert run_json(site_dir, "verify", "--deep")["ok"] is True
    site.close()
