"""Build jobs end to end: ``console build``, ``builds``, ``builds log``, ``builds cancel``.

Real worker processes, real pip and gcc, a stand-in for julia. Nothing sleeps to wait: processes
that must be running are known to be running from marker files they write (polled in a bounded
loop that also stops at once if the build ended), and the wait for a worker's end is ``wait()``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import core.build.jobs as jobs
from core.build.run import group_alive
from core.errors import BadInput, NotFound
from core.site.site import open_site

from helpers import CONSOLE, REPO, run_console, run_json, set_config, tree_listing, write_script

FIXTURES = Path(__file__).parents[1] / "fixtures"
PKGS = FIXTURES / "pkgs"


# --- helpers -------------------------------------------------------------------------------------


def audit(site: Path) -> list[tuple[str, str, str]]:
    db = sqlite3.connect(site / "state.db")
    try:
        return [tuple(r) for r in db.execute("select verb, target, outcome from audit order by id")]
    finally:
        db.close()


def build_audit(site: Path) -> list[tuple[str, str, str]]:
    return [r for r in audit(site) if r[0] not in ("init",)]


def release_files(site: Path) -> list[str]:
    releases = site / "store" / "releases"
    return sorted(p.name for p in releases.iterdir()) if releases.is_dir() else []


def wait_for_markers(site: Path, build_id: int, paths: list[Path], limit_s: float = 120) -> None:
    """Bounded poll until every marker exists; fails at once if the build ended meanwhile."""
    deadline = time.monotonic() + limit_s
    s = open_site(site)
    try:
        while not all(p.exists() for p in paths):
            try:
                row = jobs.get_build(s, build_id)
            except NotFound:  # a foreground `console build` has not queued it yet
                row = {"status": "queued"}
            assert row["status"] in jobs.ACTIVE, f"build ended early: {row}\n{jobs.read_log(s, build_id)[0]}"
            assert time.monotonic() < deadline, "markers never appeared"
            time.sleep(0.02)
    finally:
        s.close()


# A target that reports "<pgid>" in a marker, with a background child in its group, then blocks.
BLOCKING = """
    sleep 3600 &
    echo "$$" > "$MARKER_DIR/$DEPOT_ARCH.tmp"
    mv "$MARKER_DIR/$DEPOT_ARCH.tmp" "$MARKER_DIR/$DEPOT_ARCH"
    wait
"""


# --- python builder end to end -------------------------------------------------------------------


def test_python_build_publish_promote_export_and_smoke(site_dir, tmp_path, find_links):
    req = tmp_path / "jetpy" / "requirements.txt"
    req.parent.mkdir()
    req.write_text("purepkg==1.0\nvecext==1.0\n")
    proc = run_console(
        site_dir,
        "build",
        str(req),
        "--builder",
        "python",
        "--arch",
        "x86_64,x86_64_v3",
        "--publish",
        "--promote",
        "testing",
        "--create",
        "--name",
        "jetpy",
        "--option",
        f"find_links={find_links}",
        "--option",
        "no_index=true",
        "--option",
        "no_build_isolation=yes",
        "--json",
        check=0,
    )
    row = json.loads(proc.stdout)
    assert row["status"] == "succeeded" and row["error"] is None and row["step"] == "promoting"
    assert row["targets"] == ["x86_64", "x86_64_v3"] and row["channel"] == "testing" and row["publish"]
    assert row["name"] == "jetpy" and row["label"].startswith(f"build{row['id']}-")
    release = row["release"]
    # The log was echoed on stderr while it ran, and is kept.
    assert "[x86_64_v3] $ " in proc.stderr and "[build] succeeded" in proc.stderr
    log = Path(row["log_path"])
    assert log == site_dir / "logs" / f"build-{row['id']}.log"
    assert "[build] published " + release in log.read_text()
    assert not (site_dir / "builds" / str(row["id"])).exists()  # removed after a successful publish

    assert release_files(site_dir) == [release[7:] + ".json"]
    channels = run_json(site_dir, "channels")
    assert [(c["channel"], c["release"]) for c in channels] == [("testing", release)]
    rel = run_json(site_dir, "show", release[7:19])
    assert rel["name"] == "jetpy" and sorted(rel["images"]) == ["x86_64", "x86_64_v3"]
    assert rel["images"]["x86_64_v3"]["cpu_target"] == "x86_64_v3"
    assert rel["builder"]["kind"] == "python"
    assert rel["builder"]["targets"]["x86_64_v3"]["cflags"] == "-march=x86-64-v3 -mtune=generic -O2"
    assert [p["name"] for p in rel["source"]["packages"]] == ["purepkg", "vecext"]
    assert list(rel["source"]["files"]) == ["requirements.txt"]
    assert rel["smoke"] == {"command": ["python3", "-c", "import purepkg, vecext"], "timeout_s": 600}

    listed = run_json(site_dir, "builds")
    assert [(b["id"], b["status"], b["release"]) for b in listed] == [(row["id"], "succeeded", release)]

    # Export the baseline image and run the release's smoke command from the exported tree.
    dest = tmp_path / "export"
    run_console(site_dir, "export", release[7:19], "--arch", "x86_64", str(dest), check=0)
    assert "lib/python/vecext/__init__.py" in tree_listing(dest)
    env = {
        **os.environ,
        "PYTHONPATH": str(dest / "lib" / "python"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    cmd = rel["smoke"]["command"]
    smoke = subprocess.run(
        [*cmd[:-1], cmd[-1] + "; print(vecext.SELFTEST, vecext.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert smoke.returncode == 0, smoke.stderr
    assert smoke.stdout == f"11.0 {dest / 'lib' / 'python' / 'vecext' / '__init__.py'}\n"

    trail = build_audit(site_dir)
    bid = f"build {row['id']}"
    for step in [
        ("build", bid, "queued"),
        ("build-start", bid, "ok"),
        ("build-target", f"{bid} x86_64", "ok"),
        ("build-target", f"{bid} x86_64_v3", "ok"),
        ("publish", release, "ok"),
        ("promote", "testing", "ok"),
        ("build-finish", bid, "succeeded"),
    ]:
        assert step in trail, (step, trail)
    assert (
        trail.index(("publish", release, "ok"))
        < trail.index(("promote", "testing", "ok"))
        < trail.index(("build-finish", bid, "succeeded"))
    )


# --- failure -------------------------------------------------------------------------------------


def test_command_failing_on_one_target_publishes_nothing(site_dir, tmp_path):
    script = write_script(
        tmp_path / "site-build.sh",
        """
        if [ "$DEPOT_ARCH" = x86_64_v3 ]; then echo "boom: no AVX2 toolchain"; exit 1; fi
        echo "fine on $DEPOT_ARCH"
        touch "$DEPOT_OUT/ok"
    """,
    )
    proc = run_console(
        site_dir,
        "build",
        str(script),
        "--builder",
        "command",
        "--arch",
        "x86_64,x86_64_v3",
        "--publish",
        "--promote",
        "testing",
        "--create",
        check=1,
    )
    assert proc.stdout == "build 1 failed: site-build.sh exited 1 for x86_64_v3 (see log)\n"
    assert "console: build 1 failed: site-build.sh exited 1 for x86_64_v3 (see log) (log: " in proc.stderr

    row = run_json(site_dir, "builds")[0]
    assert row["status"] == "failed" and row["release"] is None and row["finished"]
    assert row["error"] == "site-build.sh exited 1 for x86_64_v3 (see log)"
    assert release_files(site_dir) == []
    assert run_json(site_dir, "channels") == []
    assert run_json(site_dir, "releases") == []

    log = run_console(site_dir, "builds", "log", "1", check=0).stdout.splitlines()
    assert "[x86_64_v3] boom: no AVX2 toolchain" in log and "[x86_64_v3] site-build.sh exited 1" in log
    assert (
        log[-1] == f"[build] failed: site-build.sh exited 1 for x86_64_v3 (see log) "
        f"(build files kept in {site_dir.resolve() / 'builds' / '1'})"
    )
    assert (site_dir / "builds" / "1" / "x86_64_v3" / "work").is_dir()  # kept for debugging
    follow = run_console(site_dir, "builds", "log", "1", "--follow", check=1)
    assert follow.stdout.splitlines() == log

    trail = build_audit(site_dir)
    assert ("build-target", "build 1 x86_64_v3", "error: site-build.sh exited 1 for x86_64_v3 (see log)") in trail
    assert trail[-1] == ("build-finish", "build 1", "failed: site-build.sh exited 1 for x86_64_v3 (see log)")
    assert not any(verb in ("publish", "promote") for verb, _, _ in trail)


def test_targets_run_in_parallel_up_to_the_limit(site_dir, tmp_path):
    """With parallel = 2 each target waits for the other's marker (it fails if they run one after
    the other); with parallel = 1 the log shows one target done before the next starts."""
    markers = tmp_path / "markers"
    markers.mkdir()
    script = write_script(
        tmp_path / "pair.sh",
        """
        touch "$MARKER_DIR/$DEPOT_ARCH"
        other=x86_64; [ "$DEPOT_ARCH" = x86_64 ] && other=x86_64_v3
        i=0
        while [ ! -e "$MARKER_DIR/$other" ]; do
            i=$((i+1)); [ $i -lt 3000 ] || { echo "no $other running alongside"; exit 3; }
            sleep 0.02
        done
        echo "met $other"
    """,
    )
    env = {"MARKER_DIR": str(markers)}
    run_console(
        site_dir,
        "build",
        str(script),
        "--builder",
        "command",
        "--arch",
        "x86_64,x86_64_v3",
        "--quiet",
        env=env,
        check=0,
    )

    set_config(site_dir, "build", "parallel", 1)
    plain = write_script(tmp_path / "plain.sh", 'echo "on $DEPOT_ARCH"\n')
    run_console(site_dir, "build", str(plain), "--builder", "command", "--arch", "x86_64,x86_64_v3", "--quiet", check=0)
    lines = [ln for ln in (site_dir / "logs" / "build-2.log").read_text().splitlines() if ln.startswith("[build] x86")]
    assert lines == [
        "[build] x86_64: building",
        "[build] x86_64: done",
        "[build] x86_64_v3: building",
        "[build] x86_64_v3: done",
    ]
    # Without --publish the images are the result: kept.
    assert (site_dir / "builds" / "2" / "x86_64_v3" / "image").is_dir()


# --- cancel and a dead worker --------------------------------------------------------------------


def test_cancel_running_build_ends_every_process_group(site_dir, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    script = write_script(tmp_path / "block.sh", BLOCKING)
    env = {"MARKER_DIR": str(markers)}
    started = run_json(
        site_dir,
        "build",
        str(script),
        "--builder",
        "command",
        "--arch",
        "x86_64,x86_64_v3",
        "--publish",
        "--promote",
        "testing",
        "--create",
        "--detach",
        env=env,
    )
    build_id, worker = started["id"], started["pid"]
    wait_for_markers(site_dir, build_id, [markers / "x86_64", markers / "x86_64_v3"])
    target_groups = [int((markers / a).read_text()) for a in ("x86_64", "x86_64_v3")]
    assert group_alive(worker) and all(group_alive(g) for g in target_groups)
    row = run_json(site_dir, "builds")[0]
    assert row["status"] == "running" and row["step"] == "building" and row["pid"] == worker

    full_env = {**os.environ, "PYTHONPATH": str(REPO)}
    follower = subprocess.Popen(
        [*CONSOLE, "--headless", "--site", str(site_dir), "builds", "log", str(build_id), "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
    )

    cancelled = run_json(site_dir, "builds", "cancel", str(build_id))
    assert cancelled["status"] == "cancelled" and cancelled["error"] == "cancelled by the operator"
    assert not group_alive(worker) and not any(group_alive(g) for g in target_groups)

    out, err = follower.communicate(timeout=120)
    assert follower.returncode == 1, err
    assert "[x86_64] $ " in out and "[build] cancel requested" in out
    assert out.splitlines()[-1] == "[build] cancelled: cancelled by the operator"

    assert release_files(site_dir) == [] and run_json(site_dir, "channels") == []
    assert not (site_dir / "builds" / str(build_id)).exists()
    assert (site_dir / "logs" / f"build-{build_id}.log").is_file()
    trail = build_audit(site_dir)
    assert ("build-cancel", f"build {build_id}", "ok") in trail
    assert ("build-finish", f"build {build_id}", "cancelled: cancelled by the operator") in trail
    assert {r for r in trail if r[0] == "build-target"} == {
        ("build-target", f"build {build_id} x86_64", "cancelled"),
        ("build-target", f"build {build_id} x86_64_v3", "cancelled"),
    }

    proc = run_console(site_dir, "builds", "cancel", str(build_id), check=2)
    assert proc.stderr == f"console: build {build_id} already cancelled; nothing to cancel\n"


def test_ctrl_c_in_the_foreground_cancels_the_build(site_dir, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    script = write_script(tmp_path / "block.sh", BLOCKING)
    env = {**os.environ, "PYTHONPATH": str(REPO), "MARKER_DIR": str(markers)}
    console = subprocess.Popen(
        [
            *CONSOLE,
            "--headless",
            "--site",
            str(site_dir),
            "build",
            str(script),
            "--builder",
            "command",
            "--arch",
            "x86_64",
            "--publish",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    wait_for_markers(site_dir, 1, [markers / "x86_64"])
    group = int((markers / "x86_64").read_text())
    console.send_signal(signal.SIGINT)
    out, err = console.communicate(timeout=120)
    assert console.returncode == 1, err
    assert out == "build 1 cancelled: cancelled by the operator\n"
    assert "console: cancelling build 1\n" in err and "[build] cancel requested" in err
    assert not group_alive(group) and release_files(site_dir) == []


def test_cancel_is_refused_while_publishing(site_dir, tmp_path):
    """A pre_publish hook holds the build in its publishing step until the test lets it go."""
    markers = tmp_path / "markers"
    markers.mkdir()
    hook = write_script(
        tmp_path / "hook.sh",
        """
        touch "$MARKER_DIR/publishing"
        i=0
        while [ ! -e "$MARKER_DIR/go" ]; do i=$((i+1)); [ $i -lt 6000 ] || exit 9; sleep 0.02; done
    """,
    )
    set_config(site_dir, "publish", "pre_publish", str(hook))
    script = write_script(tmp_path / "ok.sh", 'touch "$DEPOT_OUT/ok"\n')
    env = {"MARKER_DIR": str(markers)}
    build_id = run_json(
        site_dir, "build", str(script), "--builder", "command", "--arch", "x86_64", "--publish", "--detach", env=env
    )["id"]
    wait_for_markers(site_dir, build_id, [markers / "publishing"])
    proc = run_console(site_dir, "builds", "cancel", str(build_id), check=3)
    assert proc.stderr == f"console: build {build_id} is already publishing; too late to cancel\n"
    (markers / "go").touch()
    row = run_json(site_dir, "builds", "log", str(build_id), "--follow")
    assert row["status"] == "succeeded" and release_files(site_dir) == [row["release"][7:] + ".json"]
    assert (
        "build-cancel",
        f"build {build_id}",
        f"error: build {build_id} is already publishing; too late to cancel",
    ) in build_audit(site_dir)


def test_killed_worker_shows_failed_and_its_children_are_ended(site_dir, tmp_path, monkeypatch):
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("MARKER_DIR", str(markers))
    script = write_script(tmp_path / "block.sh", BLOCKING)
    site = open_site(site_dir)
    try:
        build_id = jobs.create_build(site, script, "command", "x86_64")
        proc = jobs.spawn_worker(site, build_id)
        wait_for_markers(site_dir, build_id, [markers / "x86_64"])
        child_group = int((markers / "x86_64").read_text())
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        assert group_alive(child_group)  # orphaned: it runs in its own session
    finally:
        site.close()

    row = run_json(site_dir, "builds")[0]
    assert (row["id"], row["status"], row["error"]) == (build_id, "failed", "worker died")
    assert not group_alive(child_group)
    assert (
        run_console(site_dir, "builds", "log", str(build_id), check=0).stdout.splitlines()[-1]
        == f"[build] failed: worker died (pid {proc.pid} is gone)"
    )
    assert build_audit(site_dir)[-1] == ("build-finish", f"build {build_id}", "failed: worker died")


def test_cancel_of_a_queued_build_and_its_late_worker(site_dir, tmp_path):
    script = write_script(tmp_path / "never.sh", 'touch "$DEPOT_OUT/ran"\n')
    site = open_site(site_dir)
    try:
        build_id = jobs.create_build(site, script, "command", ["x86_64"])
        assert jobs.get_build(site, build_id)["status"] == "queued"
        assert jobs.cancel_build(site, build_id)["status"] == "cancelled"
        # A worker that starts after the cancel does nothing.
        proc = jobs.spawn_worker(site, build_id)
        assert proc.wait() == 1
        row = jobs.get_build(site, build_id)
    finally:
        site.close()
    assert row["status"] == "cancelled" and row["started"] is None
    assert not (site_dir / "builds" / str(build_id)).exists()
    assert "build is cancelled, not running it" in (site_dir / "logs" / f"build-{build_id}.log").read_text()


# --- julia through the stand-in ------------------------------------------------------------------


def test_julia_build_through_the_standin(site_dir, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shutil.copyfile(FIXTURES / "standin_julia.py", bindir / "julia")
    (bindir / "julia").chmod(0o755)
    project = tmp_path / "envs" / "jetreco"
    shutil.copytree(PKGS / "julia_project", project)
    env = {
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "JULIA_DEPOT_PATH": "/nonexistent",
        "JULIA_PKG_SERVER": "https://pkg.example.org",
    }
    for var in ("JULIA", "STANDIN_FAIL_PACKAGE", "STANDIN_EXIT"):
        env[var] = ""
    row = run_json(
        site_dir,
        "build",
        str(project),
        "--builder",
        "julia",
        "--arch",
        "x86_64,x86_64_v3",
        "--publish",
        "--label",
        "2026.11-1",
        env={**env, "JULIA": ""},
    )
    assert row["status"] == "succeeded", row
    rel = run_json(site_dir, "show", row["release"][7:19])
    assert (rel["name"], rel["label"]) == ("jetreco", "2026.11-1")
    assert rel["builder"] == {
        "kind": "julia",
        "tool_version": "1.10.4",
        "julia_version": "1.10",
        "targets": {"x86_64": {"cpu_target": "generic"}, "x86_64_v3": {"cpu_target": "x86-64-v3"}},
    }
    assert {a: i["cpu_target"] for a, i in rel["images"].items()} == {"x86_64": "generic", "x86_64_v3": "x86-64-v3"}
    assert sorted(rel["source"]["files"]) == ["Manifest.toml", "Project.toml"]
    assert rel["smoke"]["command"] == ["julia", "--startup-file=no", "-e", "using Example, JSON"]
    log = (site_dir / "logs" / f"build-{row['id']}.log").read_text()
    assert "[x86_64_v3]   using package server https://pkg.example.org" in log
    assert "Pkg.precompile(strict=true)" in log

    dest = tmp_path / "depot"
    run_console(site_dir, "export", row["release"][7:19], "--arch", "x86_64_v3", str(dest), check=0)
    ji = next((dest / "compiled" / "v1.10" / "JSON").glob("*.ji")).read_bytes()
    assert b"cpu_target=x86-64-v3\0" in ji
    assert (dest / "environments" / "v1.10" / "Manifest.toml").read_bytes() == (project / "Manifest.toml").read_bytes()


def test_julia_precompile_failure_fails_the_build(site_dir, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shutil.copyfile(FIXTURES / "standin_julia.py", bindir / "julia")
    (bindir / "julia").chmod(0o755)
    env = {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "STANDIN_EXIT": "1", "JULIA": ""}
    proc = run_console(
        site_dir,
        "build",
        str(PKGS / "julia_project"),
        "--builder",
        "julia",
        "--arch",
        "x86_64",
        "--publish",
        env=env,
        check=1,
    )
    assert proc.stdout == "build 1 failed: julia exited 1 for x86_64 (see log)\n"
    assert "[x86_64] ERROR: The following 1 direct dependency failed to precompile" in proc.stderr
    assert release_files(site_dir) == []


# --- bad input -----------------------------------------------------------------------------------


BAD_REQUESTS = [
    (["--builder", "conda", "--arch", "x86_64"], "unknown builder 'conda' (known: command, julia, python)"),
    (
        ["--builder", "command", "--arch", "x86_64", "--promote", "testing"],
        "--promote needs --publish (only a published release can be promoted)",
    ),
    (
        ["--builder", "command", "--arch", "x86_64", "--option", "colour=blue"],
        "command builder: unknown option 'colour'",
    ),
    (
        ["--builder", "command", "--arch", "x86_64", "--option", "nokeyvalue"],
        "--option expects KEY=VALUE, got 'nokeyvalue'",
    ),
    (["--builder", "command", "--arch", "x86_64,x86_64"], "--arch lists x86_64 twice"),
    (["--builder", "command", "--arch", ""], "--arch needs at least one micro-architecture"),
    (
        ["--builder", "python", "--arch", "x86_64", "--option", "no_index=maybe"],
        "--option no_index must be true or false, not 'maybe'",
    ),
    (["--builder", "command", "--arch", "x86_64", "--publish", "--name", "a/b"], "invalid release name 'a/b'"),
]


def test_bad_build_requests_are_refused_before_anything_runs(site_dir, tmp_path):
    spec = tmp_path / "requirements.txt"
    spec.write_text("purepkg==1.0\n")
    spec.chmod(0o755)
    for args, message in BAD_REQUESTS:
        proc = run_console(site_dir, "build", str(spec), *args, check=2)
        assert proc.stderr.startswith(f"console: {message}"), (args, proc.stderr)
    assert (
        run_console(
            site_dir, "--read-only", "build", str(spec), "--builder", "command", "--arch", "x86_64", check=2
        ).stderr
        == "console: build: refused, the console is in read-only mode\n"
    )
    assert run_json(site_dir, "builds") == []
    assert not (site_dir / "logs").exists() or not any((site_dir / "logs").iterdir())
    assert build_audit(site_dir) == []


def test_build_promote_to_a_new_channel_is_refused_as_promote_refuses_it(site_dir, tmp_path):
    """Creating a channel is an explicit act: ``build --promote C`` for a C the site does not have
    is bad input listing the known channels, as ``promote --channel C`` is, unless ``--create``."""
    script = write_script(tmp_path / "pkg-build.sh", 'echo "build $DEPOT_ARCH" > "$DEPOT_OUT/hello"')
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_text("a")
    rid = run_json(site_dir, "publish", "--name", "pkg", "--image", f"x86_64={tree}")["release_id"]
    run_console(site_dir, "promote", rid, "--channel", "stable", "--create", check=0)
    build = ["build", str(script), "--builder", "command", "--arch", "x86_64", "--publish", "--quiet"]

    refused = run_console(site_dir, *build, "--promote", "stabel", check=2)
    assert refused.stderr == (
        "console: unknown channel 'stabel' (known: stable); to create it: build with '--promote stabel --create'\n"
    )
    promote = run_console(site_dir, "promote", rid, "--channel", "stabel", check=2)
    assert promote.stderr.startswith("console: unknown channel 'stabel' (known: stable); to create it: ")
    assert run_json(site_dir, "builds") == []  # refused before the build was queued: nothing ran
    assert (
        run_console(site_dir, *build[:-2], "--create", check=2).stderr
        == "console: --create needs --promote (it creates the channel the build promotes to)\n"
    )

    run_console(site_dir, *build, "--promote", "stable", check=0)  # a known channel needs no flag
    run_console(site_dir, *build, "--promote", "canary", "--create", check=0)
    channels = {c["channel"]: c["release"] for c in run_json(site_dir, "channels")}
    built = {r["channel"]: (r["status"], r["release"]) for r in run_json(site_dir, "builds")}
    assert channels == {ch: release for ch, (_, release) in built.items()}
    assert sorted(built) == ["canary", "stable"] and {s for s, _ in built.values()} == {"succeeded"}


def test_unknown_build_ids(site_dir):
    assert run_console(site_dir, "builds", "log", "7", check=2).stderr == "console: no build 7 (see 'console builds')\n"
    assert (
        run_console(site_dir, "builds", "cancel", "x", check=2).stderr
        == "console: build id must be a number, not 'x'\n"
    )
    assert run_console(site_dir, "builds", check=0).stdout == "no builds\n"


def test_parse_options_types():
    assert jobs.parse_options(
        "python",
        ["find_links=/a", "find_links=b", "no_index=yes", "smoke_command=python3 -c 'import x'", "smoke_timeout_s=30"],
    ) == {
        "find_links": ["/a", "b"],
        "no_index": True,
        "smoke_command": ["python3", "-c", "import x"],
        "smoke_timeout_s": 30,
    }
    with pytest.raises(BadInput, match="smoke_timeout_s must be a whole number"):
        jobs.parse_options("command", ["smoke_timeout_s=soon"])
    with pytest.raises(BadInput, match="build id must be positive, not 0"):
        jobs.parse_build_id("0")
