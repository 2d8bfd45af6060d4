"""``console build … --executor slurm`` (core.build.slurm) through the real sbatch of tests/fixtures/slurm.py.

Each target is one sbatch job: ``x86_64_v3`` goes wherever Slurm puts it (partition debug), ``zen3``
to node3 only (``[build] slurm_targets``: ``--partition=zen --constraint=zen3``). The jobs build
into the cluster's shared directory and the console publishes from there. The console reaches
Slurm as an operator's shell would (``SLURM_CONF``); the build scripts are plain command-builder
scripts, nothing in the code under test knows it is tested.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.slurm import SlurmCluster
from helpers import CONSOLE, REPO, init_site, run_console, run_json, set_config

POLL_S = 0.2
DEADLINE_S = 120.0

SCRIPT = """#!/bin/sh
echo "building $DEPOT_ARCH on $SLURMD_NODENAME"
mkdir -p "$DEPOT_OUT/bin"
printf '%s %s\\n' "$DEPOT_ARCH" "$SLURMD_NODENAME" > "$DEPOT_OUT/bin/built-for"
"""
FAILING = SCRIPT + 'if [ "$DEPOT_ARCH" = zen3 ]; then echo "zen3 toolchain broken" >&2; exit 3; fi\n'


def db_row(site: Path, build_id: int) -> dict:
    conn = sqlite3.connect(str(site / "state.db"))
    conn.row_factory = sqlite3.Row
    try:
        return dict(conn.execute("select * from builds where id = ?", (build_id,)).fetchone())
    finally:
        conn.close()


def release_files(site: Path) -> list[str]:
    releases = site / "store" / "releases"
    return sorted(p.name for p in releases.iterdir()) if releases.is_dir() else []


@pytest.fixture(scope="module")
def site(slurm: SlurmCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    s = init_site(tmp_path_factory.mktemp("slurmbuild") / "site")
    set_config(s, "build", "slurm_shared_dir", str(slurm.shared))
    set_config(s, "build", "slurm_targets", {"zen3": "--partition=zen --constraint=zen3"})
    set_config(s, "build", "slurm_options", ["--time=10"])
    set_config(s, "build", "slurm_poll_s", POLL_S)
    set_config(s, "build", "grace_s", 5.0)
    return s


def script(tmp_path: Path, body: str, name: str = "build.sh") -> Path:
    path = tmp_path / name
    path.write_text(body)
    path.chmod(0o755)
    return path


def build(slurm: SlurmCluster, site: Path, spec: Path, *extra: str) -> tuple[int, dict, str]:
    proc = run_console(
        site,
        "build",
        str(spec),
        "--builder",
        "command",
        "--arch",
        "x86_64_v3,zen3",
        "--executor",
        "slurm",
        "--name",
        "slurmdemo",
        *extra,
        "--json",
        env=slurm.env,
    )
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def test_one_target_failing_publishes_nothing_and_names_the_job(
    slurm: SlurmCluster, site: Path, tmp_path: Path
) -> None:
    code, row, err = build(slurm, site, script(tmp_path, FAILING), "--publish", "--promote", "testing", "--create")
    assert code == 1, (row, err)
    assert row["status"] == "failed" and row["executor"] == "slurm" and row["release"] is None
    zen3 = row["jobs"]["zen3"]
    assert zen3["job"] and zen3["state"] == "FAILED" and zen3["exit"] == 1 and zen3["node"] == "node3"
    assert row["error"].startswith(f"zen3: Slurm job {zen3['job']} failed: ")
    # The other target's job ended too (completed before, or scancelled by the failure).
    assert row["jobs"]["x86_64_v3"]["state"] in ("COMPLETED", "CANCELLED")
    # Nothing published, nothing promoted.
    assert release_files(site) == []
    assert run_json(site, "channels") == []
    # The job's own output came back into the build log, and the database row agrees.
    log = Path(row["log_path"]).read_text()
    assert "[zen3] building zen3 on node3" in log and "[zen3] zen3 toolchain broken" in log
    assert json.loads(db_row(site, row["id"])["jobs"])["zen3"]["job"] == zen3["job"]
    assert db_row(site, row["id"])["status"] == "failed"
    # Kept to debug, like a failed local build.
    assert Path(zen3["output"]).is_file()
    slurm.wait_no_jobs()


def test_both_targets_succeed_published_and_promoted(slurm: SlurmCluster, site: Path, tmp_path: Path) -> None:
    code, row, err = build(slurm, site, script(tmp_path, SCRIPT), "--publish", "--promote", "testing", "--create")
    assert code == 0, (row, err)
    assert row["status"] == "succeeded" and row["error"] is None and row["release"]
    jobs = row["jobs"]
    assert {a: j["state"] for a, j in jobs.items()} == {"x86_64_v3": "COMPLETED", "zen3": "COMPLETED"}
    assert jobs["zen3"]["node"] == "node3" and jobs["x86_64_v3"]["job"] != jobs["zen3"]["job"]
    release = row["release"]
    assert release_files(site) == [release[7:] + ".json"]
    channels = run_json(site, "channels")
    assert [(c["channel"], c["release"]) for c in channels] == [("testing", release)]
    rel = run_json(site, "show", release[7:19])
    assert sorted(rel["images"]) == ["x86_64_v3", "zen3"]
    # The bytes published are what each job wrote on its node.
    out = tmp_path / "export"
    run_console(site, "export", release[7:19], "--arch", "zen3", str(out), check=0)
    assert (out / "bin" / "built-for").read_text() == "zen3 node3\n"
    # The shared build directory is gone after the publish.
    assert not list(slurm.shared.glob(f"depot-build-*-{row['id']}"))
    # `builds` shows the jobs.
    text = run_console(site, "builds", env=slurm.env, check=0).stdout
    assert f"zen3:{jobs['zen3']['job']} COMPLETED" in text
    slurm.wait_no_jobs()


def test_cancel_scancels_the_jobs_and_the_follower_sees_it(slurm: SlurmCluster, site: Path, tmp_path: Path) -> None:
    marker = f"{slurm.directory}/slow-marker"  # what slurm.slow_pids() looks for
    published = release_files(site)
    blocking = (
        SCRIPT
        + f'echo "blocking on $SLURMD_NODENAME"\nexec {sys.executable} -c "import time; time.sleep(3600)" {marker}\n'
    )
    code, row, err = build(slurm, site, script(tmp_path, blocking), "--detach")
    assert code == 0, (row, err)
    build_id = row["id"]
    end = time.monotonic() + DEADLINE_S
    while True:  # bounded poll: both jobs running, their output in the build log
        row = run_json(site, "builds", "log", str(build_id), env=slurm.env)
        states = {a: j.get("state") for a, j in row["build"]["jobs"].items()}
        if states == {"x86_64_v3": "RUNNING", "zen3": "RUNNING"} and row["log"].count("blocking on") == 2:
            break
        assert row["build"]["status"] in ("queued", "running"), row
        assert time.monotonic() < end, (states, row["log"])
        time.sleep(POLL_S)
    assert "[zen3] blocking on node3" in row["log"]
    job_ids = {a: j["job"] for a, j in row["build"]["jobs"].items()}
    assert set(slurm.jobs()) == set(job_ids.values())
    follower = subprocess.Popen(
        [*CONSOLE, "--headless", "--site", str(site), "builds", "log", str(build_id), "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **slurm.env},
    )
    try:
        proc = run_console(site, "builds", "cancel", str(build_id), "--json", env=slurm.env)
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        row = json.loads(proc.stdout)
        out, _ = follower.communicate(timeout=DEADLINE_S)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert row["status"] == "cancelled"
    assert {a: j["state"] for a, j in row["jobs"].items()} == {"x86_64_v3": "CANCELLED", "zen3": "CANCELLED"}
    assert db_row(site, build_id)["status"] == "cancelled"
    assert slurm.jobs() == []  # no job of the build pending or running
    assert follower.returncode == 1 and "[zen3] blocking on node3" in out and "scancel" in out
    end = time.monotonic() + DEADLINE_S
    while slurm.slow_pids() and time.monotonic() < end:
        time.sleep(POLL_S)
    assert slurm.slow_pids() == []
    assert release_files(site) == published  # a cancelled build publishes nothing
    assert not list(slurm.shared.glob(f"depot-build-*-{build_id}"))


def test_slurm_executor_without_shared_dir_is_refused_before_anything_runs(slurm: SlurmCluster, tmp_path: Path) -> None:
    s = init_site(tmp_path / "site")
    proc = run_console(
        s, "build", str(script(tmp_path, SCRIPT)), "--builder", "command", "--arch", "x86_64", "--executor", "slurm"
    )
    assert proc.returncode == 2 and "slurm_shared_dir" in proc.stderr
    assert run_json(s, "builds") == []
