"""Builders and the build runner: real subprocesses, real pip and gcc, a stand-in for julia.

Nothing here sleeps to wait: processes that must be running are known to be running through a FIFO
handshake (the reader's open blocks until the writer has opened it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from core.build.builders import BuildTarget, get_builder, known_builders, load_site_builders
from core.build.builders import base as builders_base
from core.build.run import BuildCancelled, Runner, group_alive, read_pgid_file, terminate_build
from core.errors import BadInput, CheckFailed

from helpers import write_script

FIXTURES = Path(__file__).parents[1] / "fixtures"
PKGS = FIXTURES / "pkgs"
JULIA_PROJECT = PKGS / "julia_project"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def target(tmp_path: Path, arch: str) -> BuildTarget:
    return BuildTarget(arch=arch, out_dir=tmp_path / "out" / arch, work_dir=tmp_path / "work" / arch)


def live_members(pgid: int) -> list[int]:
    """Pids of running (non-zombie) processes in process group ``pgid``, read from /proc."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            fields = text[text.rfind(")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                pids.append(int(entry.name))
    return pids


# --- registry and options ------------------------------------------------------------------------


def test_registry_knows_builtins_and_refuses_unknown():
    assert known_builders() == ["command", "julia", "python"]
    assert get_builder("julia").name == "julia"
    with pytest.raises(BadInput) as err:
        get_builder("conda")
    assert str(err.value) == "unknown builder 'conda' (known: command, julia, python)"


def test_site_builders_load_from_module_spec(tmp_path, monkeypatch):
    (tmp_path / "site_builder_mod.py").write_text(
        textwrap.dedent("""
        from core.build.builders.base import Builder, BuildOutput

        class Spack(Builder):
            def validate_source(self, source, options):
                pass

            def build(self, source, target, runner, options):
                return BuildOutput({"kind": "command"}, [], {"command": ["true"], "timeout_s": 1}, "x")

        NotABuilder = object
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(builders_base, "_REGISTRY", dict(builders_base._REGISTRY))
    load_site_builders({"spack": "site_builder_mod:Spack"})
    assert get_builder("spack").name == "spack"
    with pytest.raises(BadInput, match="is not 'module:ClassName'"):
        load_site_builders({"x": "site_builder_mod"})
    with pytest.raises(BadInput, match="cannot import no_such_mod_xyz"):
        load_site_builders({"x": "no_such_mod_xyz:Spack"})
    with pytest.raises(BadInput, match="is not a Builder subclass"):
        load_site_builders({"x": "site_builder_mod:NotABuilder"})


def test_unknown_or_mistyped_option_is_bad_input(tmp_path):
    req = tmp_path / "req.txt"
    req.write_text("purepkg==1.0\n")
    builder = get_builder("python")
    with pytest.raises(BadInput, match="unknown option 'find_link'"):
        builder.validate_source(req, {"find_link": ["x"]})
    with pytest.raises(BadInput, match="option 'no_index' must be bool"):
        builder.validate_source(req, {"no_index": "yes"})


# --- runner --------------------------------------------------------------------------------------


def test_runner_logs_prefixed_lines_and_fails_with_one_line(tmp_path):
    runner = Runner(tmp_path / "build.log")
    out = runner.run(
        [sys.executable, "-c", "print('hello'); import sys; print('oops', file=sys.stderr)"],
        arch="x86_64",
        capture=True,
    )
    assert out == "hello\noops"
    with pytest.raises(CheckFailed) as err:
        runner.run([sys.executable, "-c", "print('dying'); raise SystemExit(3)"], arch="x86_64_v3", label="julia")
    assert str(err.value) == "julia exited 3 for x86_64_v3 (see log)"
    assert err.value.exit_code == 1
    log = (tmp_path / "build.log").read_text().splitlines()
    assert "[x86_64] hello" in log and "[x86_64] oops" in log
    assert "[x86_64_v3] dying" in log and "[x86_64_v3] julia exited 3" in log
    assert runner.live_pgids == [] and len(runner.started_pgids) == 2


def test_runner_reports_missing_executable(tmp_path):
    with pytest.raises(CheckFailed, match="cannot start no-such-tool for x86_64"):
        Runner(tmp_path / "log").run(["no-such-tool"], arch="x86_64")


def test_log_is_readable_while_the_command_runs(tmp_path):
    """The command itself waits until its first line shows up in the log, then exits 0."""
    log = tmp_path / "build.log"
    code = textwrap.dedent(f"""
        import sys, time
        print("marker-123", flush=True)
        deadline = time.monotonic() + 30
        while "[zen3] marker-123" not in open({str(log)!r}).read():
            if time.monotonic() > deadline:
                sys.exit(9)
            time.sleep(0.01)
    """)
    Runner(log).run([sys.executable, "-c", code], arch="zen3")


# A grandchild that reports "<child pid> <own pid> <pgid>" on the FIFO, then waits forever.
GRANDCHILD = (
    "import os, signal, sys\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "with open(sys.argv[1], 'w') as f:\n"
    "    f.write(f'{os.getppid()} {os.getpid()} {os.getpgid(0)}\\n')\n"
    "while True:\n"
    "    signal.pause()\n"
)
# A child that starts the grandchild and waits forever; argv[2] == "1": it ignores SIGTERM too.
FOREVER = (
    "import signal, subprocess, sys\n"
    "if sys.argv[2] == '1':\n"
    "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    f"subprocess.Popen([sys.executable, '-c', {GRANDCHILD!r}, sys.argv[1]])\n"
    "while True:\n"
    "    signal.pause()\n"
)


def start_forever(runner: Runner, tmp_path: Path, ignore_term: bool = False):
    """Run a child + grandchild that never exit in a thread; return (thread, errors, pids, pgid)."""
    fifo = tmp_path / "ready.fifo"
    os.mkfifo(fifo)
    errors: list[BaseException] = []

    def build():
        try:
            runner.run(
                [sys.executable, "-c", FOREVER, str(fifo), "1" if ignore_term else "0"], arch="x86_64_v3", label="julia"
            )
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=build)
    thread.start()
    with open(fifo) as f:  # blocks until the grandchild has started and opened the FIFO
        child, grandchild, pgid = map(int, f.readline().split())
    return thread, errors, (child, grandchild), pgid


@pytest.mark.parametrize("ignore_term", [False, True], ids=["sigterm", "sigkill-after-grace"])
def test_cancel_kills_the_whole_group(tmp_path, ignore_term):
    runner = Runner(tmp_path / "build.log", grace_s=0.5)
    thread, errors, (child, grandchild), pgid = start_forever(runner, tmp_path, ignore_term)
    assert pgid == child and runner.live_pgids == [pgid]
    assert sorted(live_members(pgid)) == sorted([child, grandchild])

    runner.cancel()
    thread.join()

    assert live_members(pgid) == []
    assert len(errors) == 1 and isinstance(errors[0], BuildCancelled)
    assert str(errors[0]) == "build cancelled while julia ran for x86_64_v3"
    assert errors[0].exit_code == 1
    with pytest.raises(BuildCancelled):
        runner.run(["true"], arch="x86_64")
    assert runner.started_pgids == [pgid]


def test_stragglers_are_killed_when_the_command_exits(tmp_path):
    code = "import subprocess, sys; p = subprocess.Popen(['sleep', '100000'], stdout=subprocess.DEVNULL); print(p.pid)"
    runner = Runner(tmp_path / "build.log")
    pid = int(runner.run([sys.executable, "-c", code], arch="x86_64", capture=True))
    pgid = runner.started_pgids[0]
    assert os.getpgid(0) != pgid
    assert live_members(pgid) == []
    assert not group_alive(pgid)
    stat_file = Path(f"/proc/{pid}/stat")
    assert not stat_file.exists() or stat_file.read_text().split(") ")[1][0] == "Z"


WORKER = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from core.build.run import Runner, BuildCancelled
    runner = Runner(Path(sys.argv[2]), grace_s=5, pgid_file=Path(sys.argv[3]))
    runner.install_sigterm_handler()
    try:
        runner.run([sys.executable, "-c", sys.argv[4], sys.argv[5], "0"], arch="x86_64", label="julia")
    except BuildCancelled as exc:
        print(exc, flush=True)
        sys.exit(7)
""")


def test_terminate_build_from_another_process(tmp_path):
    """The jobs code's view: a worker in its own session, cancelled by its pgid only."""
    fifo = tmp_path / "ready.fifo"
    os.mkfifo(fifo)
    pgid_file = tmp_path / "build.pgids"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WORKER,
            str(Path(__file__).parents[2]),
            str(tmp_path / "build.log"),
            str(pgid_file),
            FOREVER,
            str(fifo),
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    with open(fifo) as f:
        child, grandchild, child_pgid = map(int, f.readline().split())
    assert read_pgid_file(pgid_file) == [child_pgid]
    assert os.getpgid(worker.pid) == worker.pid != child_pgid

    assert terminate_build(worker.pid, pgid_file, grace_s=5) is True

    assert worker.wait() == 7
    assert worker.stdout.read() == "build cancelled while julia ran for x86_64\n"
    worker.stdout.close()
    assert live_members(child_pgid) == [] and live_members(worker.pid) == []
    assert read_pgid_file(pgid_file) == []


# --- julia ---------------------------------------------------------------------------------------


@pytest.fixture
def standin_julia(tmp_path, monkeypatch):
    """``julia`` on PATH is the stand-in script."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    julia = bindir / "julia"
    shutil.copyfile(FIXTURES / "standin_julia.py", julia)
    julia.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("JULIA", raising=False)
    for var in ("STANDIN_FAIL_PACKAGE", "STANDIN_EXIT"):
        monkeypatch.delenv(var, raising=False)
    return julia


NON_STDLIB = ["Example", "JSON", "Parsers", "PrecompileTools", "Preferences"]


def test_julia_builds_one_depot_per_target(tmp_path, standin_julia, monkeypatch):
    # The operator's own Julia settings must not leak into the build; the package server does.
    monkeypatch.setenv("JULIA_DEPOT_PATH", f"{tmp_path}/a:{tmp_path}/b")
    monkeypatch.setenv("JULIA_PKG_PRECOMPILE_AUTO", "1")
    monkeypatch.setenv("JULIA_PKG_SERVER", "https://pkg.example.org")
    builder = get_builder("julia")
    runner = Runner(tmp_path / "build.log")
    outputs = {}
    for arch in ("x86_64", "x86_64_v3"):
        t = target(tmp_path, arch)
        outputs[arch] = builder.build(JULIA_PROJECT, t, runner, {})
        env_dir = t.out_dir / "environments" / "v1.10"
        for name in ("Project.toml", "Manifest.toml"):
            assert (env_dir / name).read_bytes() == (JULIA_PROJECT / name).read_bytes()
        compiled = t.out_dir / "compiled" / "v1.10"
        assert sorted(p.name for p in compiled.iterdir()) == NON_STDLIB
        assert not (t.out_dir / "logs").exists()

    out = outputs["x86_64"]
    assert out.kind == "julia"
    assert out.builder == {"kind": "julia", "tool_version": "1.10.4", "julia_version": "1.10", "cpu_target": "generic"}
    assert out.cpu_target == "generic" and outputs["x86_64_v3"].cpu_target == "x86-64-v3"
    assert out.smoke == {"command": ["julia", "--startup-file=no", "-e", "using Example, JSON"], "timeout_s": 600}
    by_name = {p["name"]: p for p in out.packages}
    assert by_name["JSON"] == {"name": "JSON", "uuid": "682c06a0-de6a-54ab-a142-c8b1cf79cde6", "version": "0.21.4"}
    assert by_name["Dates"]["version"] == ""
    ji = {a: next((tmp_path / "out" / a / "compiled" / "v1.10" / "JSON").glob("*.ji")).read_bytes() for a in outputs}
    assert b"cpu_target=generic\0" in ji["x86_64"] and b"cpu_target=x86-64-v3\0" in ji["x86_64_v3"]
    log = (tmp_path / "build.log").read_text()
    assert "[x86_64_v3]   Precompiling JSON [682c06a0-de6a-54ab-a142-c8b1cf79cde6]" in log
    assert "Pkg.precompile(strict=true)" in log
    assert "[x86_64]   using package server https://pkg.example.org" in log
    assert get_builder("julia").source_files(JULIA_PROJECT, {}) == {
        "Project.toml": JULIA_PROJECT / "Project.toml",
        "Manifest.toml": JULIA_PROJECT / "Manifest.toml",
    }


def test_julia_cpu_target_option_overrides(tmp_path, standin_julia):
    multi = "generic;sandybridge,-xsaveopt,clone_all;haswell,-rdrnd,base(1)"
    t = target(tmp_path, "x86_64")
    out = get_builder("julia").build(JULIA_PROJECT, t, Runner(tmp_path / "log"), {"cpu_target": multi})
    assert out.cpu_target == multi == out.builder["cpu_target"]
    ji = next((t.out_dir / "compiled" / "v1.10" / "Example").glob("*.ji")).read_bytes()
    assert f"cpu_target={multi}\0".encode() in ji


def test_julia_missing_cache_is_check_failed(tmp_path, standin_julia, monkeypatch):
    monkeypatch.setenv("STANDIN_FAIL_PACKAGE", "Parsers")
    with pytest.raises(CheckFailed) as err:
        get_builder("julia").build(JULIA_PROJECT, target(tmp_path, "x86_64_v3"), Runner(tmp_path / "log"), {})
    assert str(err.value) == "no precompile cache in compiled/v1.10 for Parsers (x86_64_v3)"
    # The package can be exempted (a package that declares __precompile__(false)).
    get_builder("julia").build(
        JULIA_PROJECT,
        target(tmp_path / "again", "x86_64_v3"),
        Runner(tmp_path / "log"),
        {"skip_compiled_check": ["Parsers"]},
    )


def test_julia_failing_precompile_is_check_failed(tmp_path, standin_julia, monkeypatch):
    monkeypatch.setenv("STANDIN_EXIT", "1")
    with pytest.raises(CheckFailed) as err:
        get_builder("julia").build(JULIA_PROJECT, target(tmp_path, "x86_64_v3"), Runner(tmp_path / "build.log"), {})
    assert str(err.value) == "julia exited 1 for x86_64_v3 (see log)"
    assert (
        "[x86_64_v3] ERROR: The following 1 direct dependency failed to precompile"
        in (tmp_path / "build.log").read_text()
    )


def test_julia_option_and_env_choose_the_executable(tmp_path, standin_julia, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    builder = get_builder("julia")
    with pytest.raises(BadInput, match="julia executable 'julia' not found"):
        builder.validate_source(JULIA_PROJECT, {})
    builder.validate_source(JULIA_PROJECT, {"julia": str(standin_julia)})
    monkeypatch.setenv("JULIA", str(standin_julia))
    out = builder.build(JULIA_PROJECT, target(tmp_path, "haswell"), Runner(tmp_path / "log"), {})
    assert out.cpu_target == "haswell"


def write_project(path: Path, manifest: str | None, deps: str = 'Example = "7876af07-990d-54b4-ab0e-23690620f79a"'):
    path.mkdir(parents=True, exist_ok=True)
    (path / "Project.toml").write_text(f"[deps]\n{deps}\n")
    if manifest is not None:
        (path / "Manifest.toml").write_text(manifest)
    return path


@pytest.mark.parametrize(
    "manifest, message",
    [
        (None, "has no Manifest.toml"),
        ('[[Example]]\nuuid = "7876af07-990d-54b4-ab0e-23690620f79a"\n', "format 1"),
        (
            'manifest_format = "2.0"\n[[deps.Other]]\nuuid = "7876af07-990d-54b4-ab0e-23690620f79b"\n',
            "Manifest.toml lacks Project.toml deps Example",
        ),
        ("manifest_format = [", "not valid TOML"),
    ],
)
def test_julia_bad_sources_are_refused_before_running(tmp_path, standin_julia, manifest, message):
    source = write_project(tmp_path / "proj", manifest)
    with pytest.raises(BadInput, match=message):
        get_builder("julia").validate_source(source, {})
    with pytest.raises(BadInput, match=message):
        get_builder("julia").build(source, target(tmp_path, "x86_64"), Runner(tmp_path / "log"), {})
    assert not (tmp_path / "out").exists() and (tmp_path / "log").read_text() == ""


def test_build_refuses_non_empty_output(tmp_path, standin_julia):
    t = target(tmp_path, "x86_64")
    t.out_dir.mkdir(parents=True)
    (t.out_dir / "stale").write_text("x")
    with pytest.raises(BadInput, match="exists and is not an empty directory"):
        get_builder("julia").build(JULIA_PROJECT, t, Runner(tmp_path / "log"), {})


# --- python --------------------------------------------------------------------------------------


def tree_digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_python_builds_per_target_with_shared_pure_files(tmp_path, find_links):
    req = tmp_path / "requirements.txt"
    req.write_text("# pinned\npurepkg==1.0\nvecext==1.0\n")
    options = {"find_links": [str(find_links)], "no_index": True, "no_build_isolation": True}
    builder = get_builder("python")
    runner = Runner(tmp_path / "build.log")
    outs, libs = {}, {}
    for arch in ("x86_64", "x86_64_v3"):
        outs[arch] = builder.build(req, target(tmp_path, arch), runner, options)
        libs[arch] = tmp_path / "out" / arch / "lib" / "python"

    base, v3 = tree_digests(libs["x86_64"]), tree_digests(libs["x86_64_v3"])
    assert base.keys() == v3.keys()
    pure = [k for k in base if k.startswith(("purepkg/", "purepkg-1.0.dist-info/"))]
    assert "purepkg/__init__.py" in pure and any(k.endswith(".pyc") for k in pure)
    assert all(base[k] == v3[k] for k in pure)
    assert base["vecext/__init__.py"] == v3["vecext/__init__.py"]
    so = [k for k in base if k.startswith("vecext/_vec") and k.endswith(".so")]
    assert len(so) == 1
    # Only the compiled extension (and the RECORD listing its hash) differ: the rest dedupes.
    assert sorted(k for k in base if base[k] != v3[k]) == ["vecext-1.0.dist-info/RECORD", so[0]]

    pycs = [libs["x86_64"] / k for k in base if k.endswith(".pyc")]
    assert len(pycs) >= 2
    for pyc in pycs:
        flags = struct.unpack("<I", pyc.read_bytes()[4:8])[0]
        assert flags == 0b01, f"{pyc} is not an unchecked-hash pyc (flags={flags})"

    out = outs["x86_64_v3"]
    assert out.kind == "python" and out.cpu_target == "x86_64_v3"
    assert out.builder["cflags"] == "-march=x86-64-v3 -mtune=generic -O2"
    assert out.builder["tool_version"].startswith(f"python {sys.version.split()[0]}, pip ")
    assert out.packages == [
        {"name": "purepkg", "uuid": "", "version": "1.0"},
        {"name": "vecext", "uuid": "", "version": "1.0"},
    ]
    assert out.smoke == {"command": ["python3", "-c", "import purepkg, vecext"], "timeout_s": 600}
    assert "[x86_64_v3] " in (tmp_path / "build.log").read_text()

    # The smoke command imports the extension, whose import runs the compiled loop.
    host_flags = Path("/proc/cpuinfo").read_text()
    runnable = ["x86_64"] + (["x86_64_v3"] if " avx2" in host_flags and " fma" in host_flags else [])
    for arch in runnable:
        command = outs[arch].smoke["command"]
        env = {**os.environ, "PYTHONPATH": str(libs[arch])}
        done = subprocess.run(
            [sys.executable, "-B", *command[1:-1], command[-1] + "; print(vecext.SELFTEST, vecext.__file__)"],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"11.0 {libs[arch] / 'vecext' / '__init__.py'}\n"


def test_python_refuses_unpinned_requirements(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("purepkg>=1.0\n")
    with pytest.raises(BadInput, match="not pinned as name==version"):
        get_builder("python").validate_source(req, {})
    with pytest.raises(BadInput, match="must be a requirements file"):
        get_builder("python").validate_source(tmp_path / "missing.txt", {})


def test_python_failing_pip_is_check_failed(tmp_path, find_links):
    req = tmp_path / "requirements.txt"
    req.write_text("purepkg==9.9\n")
    with pytest.raises(CheckFailed) as err:
        get_builder("python").build(
            req,
            target(tmp_path, "x86_64"),
            Runner(tmp_path / "build.log"),
            {"find_links": [str(find_links)], "no_index": True},
        )
    assert str(err.value) == "pip exited 1 for x86_64 (see log)"
    assert "purepkg==9.9" in (tmp_path / "build.log").read_text()


# --- command -------------------------------------------------------------------------------------


def test_command_script_gets_target_in_env(tmp_path):
    script = write_script(
        tmp_path / "build.sh",
        """
        echo "building for $DEPOT_ARCH"
        mkdir -p "$DEPOT_OUT/share"
        printf '%s\\n%s\\n%s\\n' "$DEPOT_ARCH" "$DEPOT_CFLAGS" "$JULIA_CPU_TARGET" > "$DEPOT_OUT/share/target.txt"
    """,
    )
    builder = get_builder("command")
    runner = Runner(tmp_path / "build.log")
    for arch, cflags, jt in (
        ("x86_64", "-march=x86-64 -mtune=generic", "generic"),
        ("x86_64_v3", "-march=x86-64-v3 -mtune=generic", "x86-64-v3"),
    ):
        out = builder.build(script, target(tmp_path, arch), runner, {})
        assert (tmp_path / "out" / arch / "share" / "target.txt").read_text() == f"{arch}\n{cflags}\n{jt}\n"
        assert out.kind == "command" and out.cpu_target == arch
        assert out.builder["script_digest"] == "sha256:" + sha256(script)
        assert out.smoke == {"command": ["true"], "timeout_s": 600}
    assert "[x86_64_v3] building for x86_64_v3" in (tmp_path / "build.log").read_text()


def test_command_failing_on_one_target(tmp_path):
    script = write_script(
        tmp_path / "fail.sh",
        """
        if [ "$DEPOT_ARCH" = x86_64_v3 ]; then echo "boom: no AVX2 toolchain"; exit 1; fi
        touch "$DEPOT_OUT/ok"
    """,
    )
    builder, runner = get_builder("command"), Runner(tmp_path / "build.log")
    builder.build(script, target(tmp_path, "x86_64"), runner, {})
    with pytest.raises(CheckFailed) as err:
        builder.build(script, target(tmp_path, "x86_64_v3"), runner, {})
    assert str(err.value) == "fail.sh exited 1 for x86_64_v3 (see log)"
    log = (tmp_path / "build.log").read_text().splitlines()
    assert "[x86_64_v3] boom: no AVX2 toolchain" in log and "[x86_64_v3] fail.sh exited 1" in log


def test_command_string_option_and_layout(tmp_path):
    builder = get_builder("command")
    out = builder.build(
        tmp_path,
        target(tmp_path, "zen3"),
        Runner(tmp_path / "log"),
        {
            "command": 'echo "$DEPOT_ARCH $JULIA_CPU_TARGET" > "$DEPOT_OUT/arch"',
            "layout": "julia",
            "smoke_command": ["julia", "-e", "1"],
        },
    )
    assert (tmp_path / "out" / "zen3" / "arch").read_text() == "zen3 znver3\n"
    assert out.cpu_target == "znver3" and out.builder["layout"] == "julia"
    assert out.smoke["command"] == ["julia", "-e", "1"]


def test_command_bad_sources(tmp_path):
    builder = get_builder("command")
    script = write_script(tmp_path / "noexec.sh", "true\n", executable=False)
    with pytest.raises(BadInput, match="is not executable"):
        builder.validate_source(script, {})
    with pytest.raises(BadInput, match="does not exist"):
        builder.validate_source(tmp_path / "nope.sh", {})
    with pytest.raises(BadInput, match="layout must be one of"):
        builder.validate_source(tmp_path, {"command": "true", "layout": "conda"})
