"""depot-init.sh chooses images exactly as core.arch does, under dash and bash.

The script is run for real (``sh depot-init.sh --which CHANNEL``) on a depot directory laid out as a
CVMFS target is (``channels/<name>`` -> ``../releases/<hex>``, ``depot.env``), for every cpuinfo
fixture of the test suite and for every x86_64 / aarch64 archspec target given as ``$DEPOT_ARCH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from archspec.cpu import TARGETS

from core.arch import choose_image, classify_cpuinfo
from core.site.cvmfs.initscript import render_init_script

CPUINFO = Path(__file__).resolve().parents[1] / "fixtures" / "cpuinfo"
FIXTURES = sorted(CPUINFO.glob("*.txt"))
SHELLS = [s for s in ("dash", "bash") if shutil.which(s)]
HEX = "ab" * 32

IMAGE_SETS = [
    ["x86_64", "x86_64_v3"],
    ["x86_64", "x86_64_v2", "x86_64_v3", "x86_64_v4"],
    ["x86_64", "haswell", "skylake_avx512", "icelake", "zen2", "zen3", "zen4"],
    ["x86_64_v4", "zen4", "aarch64", "neoverse_n1", "neoverse_v1", "armv8.2a"],
    ["aarch64", "neoverse_n1"],
    ["zen3", "haswell"],  # no generic fallback: some CPUs get no image
]


def make_depot(root: Path, images: list[str]) -> Path:
    rel = root / "releases" / HEX
    rel.mkdir(parents=True)
    lines = ["# test depot.env", "images\t" + " ".join(sorted(images))]
    for arch in sorted(images):
        (rel / arch).mkdir()
        lines.append(f"{arch}\tPYTHONPATH\t@IMAGE@/lib/python")
    (rel / "depot.env").write_text("\n".join(lines) + "\n")
    (root / "channels").mkdir()
    os.symlink(f"../releases/{HEX}", root / "channels" / "production")
    script = root / "depot-init.sh"
    script.write_text(render_init_script(root))
    return script


def which(shell: str, script: Path, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
    full.update(env)
    return subprocess.run([shell, str(script), "--which", "production"], capture_output=True, text=True, env=full)


def expected_line(cpu: str, images: list[str]) -> tuple[str | None, str]:
    choice = choose_image(cpu, images)
    return choice.image, choice.reason


@pytest.mark.parametrize("images", IMAGE_SETS, ids=lambda s: "+".join(s))
@pytest.mark.parametrize("shell", SHELLS)
def test_every_cpuinfo_fixture_gets_core_arch_answer(tmp_path: Path, shell: str, images: list[str]) -> None:
    assert len(FIXTURES) >= 9 and SHELLS
    script = make_depot(tmp_path / "depot", images)
    for fixture in FIXTURES:
        cpu = classify_cpuinfo(fixture.read_text())
        image, reason = expected_line(cpu, images)
        proc = which(shell, script, DEPOT_PROBE_CPUINFO=str(fixture))
        if image is None:
            assert proc.returncode == 1, (fixture.name, proc.stdout, proc.stderr)
            assert proc.stdout == ""
            # core.arch: "<cpu> cannot run a: why; cannot run b: why" -- the script says the same
            assert proc.stderr.strip() == (
                f"depot-init: no image of channel production fits this CPU ({cpu}): " + reason.removeprefix(f"{cpu} ")
            ), fixture.name
        else:
            assert proc.returncode == 0, (fixture.name, proc.stderr)
            assert proc.stdout == f"{image}\t{reason}\n", fixture.name


@pytest.mark.parametrize("shell", SHELLS)
def test_depot_arch_override_for_every_archspec_target(tmp_path: Path, shell: str) -> None:
    images = sorted({i for s in IMAGE_SETS for i in s})
    script = make_depot(tmp_path / "depot", images)
    names = [n for n, t in TARGETS.items() if t.family.name in ("x86_64", "aarch64")]
    assert len(names) > 40
    for cpu in names:
        image, reason = expected_line(cpu, images)
        proc = which(shell, script, DEPOT_ARCH=cpu)
        assert proc.returncode == (0 if image else 1), (cpu, proc.stderr)
        if image:
            assert proc.stdout == f"{image}\t{reason}\n", cpu


@pytest.mark.parametrize("shell", SHELLS)
def test_unknown_arch_unknown_channel_unreadable_cpuinfo(tmp_path: Path, shell: str) -> None:
    script = make_depot(tmp_path / "depot", ["x86_64"])
    proc = which(shell, script, DEPOT_ARCH="pentium9")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.startswith("depot-init: DEPOT_ARCH=pentium9: unknown micro-architecture")
    proc = subprocess.run([shell, str(script), "--which", "nightly"], capture_output=True, text=True)
    assert proc.returncode == 1 and "channel nightly is not published" in proc.stderr
    proc = subprocess.run([shell, str(script), "--which", "../x"], capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid channel name" in proc.stderr
    proc = which(shell, script, DEPOT_PROBE_CPUINFO=str(tmp_path / "missing"))
    assert proc.returncode == 2 and "cannot read this CPU" in proc.stderr


@pytest.mark.parametrize("shell", SHELLS)
def test_sourced_exports_env_and_leaves_no_helpers(tmp_path: Path, shell: str) -> None:
    script = make_depot(tmp_path / "depot", ["x86_64", "x86_64_v3"])
    body = (
        f'DEPOT_INIT_CHANNEL=production . "{script}"; rc=$?; '
        'echo "rc=$rc image=$DEPOT_IMAGE path=$PYTHONPATH"; set | grep -c "^_depot_init\\|^_DEPOT_AWK" || true'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
    proc = subprocess.run([shell, "-c", body], capture_output=True, text=True, env=dict(env, DEPOT_ARCH="zen3"))
    lines = proc.stdout.splitlines()
    assert lines[0] == f"rc=0 image=x86_64_v3 path={tmp_path}/depot/releases/{HEX}/x86_64_v3/lib/python"
    assert lines[1] == "0"
    # no image fits: return 1 from the sourced script, the calling shell goes on
    body = f'DEPOT_INIT_CHANNEL=production . "{script}"; echo "rc=$? image=${{DEPOT_IMAGE:-none}}"'
    proc = subprocess.run([shell, "-c", body], capture_output=True, text=True, env=dict(env, DEPOT_ARCH="neoverse_v1"))
    assert proc.stdout.strip() == "rc=1 image=none"
    assert "cannot run x86_64: other family" in proc.stderr


def make_julia_depot(root: Path) -> Path:
    """A depot whose image x86_64 is a Julia depot (depot.env rows as env_template writes them)."""
    rel = root / "releases" / HEX
    (rel / "x86_64").mkdir(parents=True)
    rows = [
        ("@MKDIR", "@WRITABLE@/julia"),
        ("JULIA_DEPOT_PATH", "@WRITABLE@/julia:@IMAGE@:"),
        ("JULIA_PKG_OFFLINE", "true"),
        ("JULIA_CPU_TARGET", "generic"),
    ]
    lines = ["# julia depot.env", "images\tx86_64", *(f"x86_64\t{k}\t{v}" for k, v in rows)]
    (rel / "depot.env").write_text("\n".join(lines) + "\n")
    (root / "channels").mkdir()
    os.symlink(f"../releases/{HEX}", root / "channels" / "production")
    script = root / "depot-init.sh"
    script.write_text(render_init_script(root))
    return script


def standin_julia(bin_dir: Path, version: str) -> Path:
    """A ``julia`` that answers ``--version`` as Julia ``version`` and otherwise prints its argv."""
    bin_dir.mkdir(parents=True)
    exe = bin_dir / "julia"
    exe.write_text(
        "#!/bin/sh\n"
        f'for a in "$@"; do [ "$a" = --version ] && echo "julia version {version}" && exit 0; done\n'
        'printf "argv:"; for a in "$@"; do printf " [%s]" "$a"; done; echo\n'
    )
    exe.chmod(0o755)
    return exe


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    ("version", "flagged"), [("1.10.4", False), ("1.11.0", True), ("1.12.3", True), ("2.0.0", True), ("1.9", False)]
)
def test_julia_wrapper_adds_pkgimages_existing_from_1_11(tmp_path: Path, shell: str, version: str, flagged: bool):
    script = make_julia_depot(tmp_path / "depot")
    os.chmod(tmp_path / "depot" / "releases" / HEX / "x86_64", 0o555)  # the depot is read-only
    real = standin_julia(tmp_path / "realbin", version)
    writable = tmp_path / "w"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
    env.update(PATH=f"{real.parent}:/usr/bin:/bin", DEPOT_WRITABLE=str(writable), DEPOT_ARCH="x86_64")
    body = (
        f'DEPOT_INIT_CHANNEL=production . "{script}" || exit 9; '
        f'DEPOT_INIT_CHANNEL=production . "{script}" || exit 9; '  # twice: PATH gets the wrapper once
        'echo "path=$PATH"; command -v julia; '
        "julia -e 'using Foo' x; julia --pkgimages=no -e 1; julia --version"
    )
    proc = subprocess.run([shell, "-c", body], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    wrapper = writable / "bin" / "julia"
    assert lines[0] == f"path={writable / 'bin'}:{real.parent}:/usr/bin:/bin"
    assert lines[1] == str(wrapper) and os.access(wrapper, os.X_OK)
    flag = "[--pkgimages=existing] " if flagged else ""
    assert lines[2] == f"argv: {flag}[-e] [using Foo] [x]"
    assert lines[3] == "argv: [--pkgimages=no] [-e] [1]"  # the command line's own choice wins
    assert lines[4] == f"julia version {version}"
    assert sorted(p.name for p in (writable / "bin").iterdir()) == ["julia"]  # no temporary left
    assert (writable / "julia").is_dir()
    assert sorted(p.name for p in (tmp_path / "depot" / "releases" / HEX / "x86_64").iterdir()) == []

    # --env prints the PATH export too; no julia besides the wrapper: it says so (exit 127)
    out = subprocess.run(
        [shell, str(script), "--env", "production"], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert f"export PATH='{writable / 'bin'}:{real.parent}:/usr/bin:/bin'" in out.splitlines()
    proc = subprocess.run(
        [str(wrapper), "-e", "1"],
        capture_output=True,
        text=True,
        env=dict(env, PATH=f"{writable / 'bin'}:/nonexistent"),
    )
    assert proc.returncode == 127 and "no julia on PATH besides the depot wrapper" in proc.stderr
    # $DEPOT_JULIA names the real julia explicitly
    proc = subprocess.run(
        [shell, str(wrapper), "-e", "1"], capture_output=True, text=True, env=dict(env, DEPOT_JULIA=str(real))
    )
    assert proc.stdout == f"argv: {flag}[-e] [1]\n"


@pytest.mark.parametrize("shell", SHELLS)
def test_python_image_gets_no_julia_wrapper(tmp_path: Path, shell: str) -> None:
    script = make_depot(tmp_path / "depot", ["x86_64"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
    env.update(DEPOT_WRITABLE=str(tmp_path / "w"), DEPOT_ARCH="x86_64")
    out = subprocess.run(
        [shell, str(script), "--env", "production"], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert "PATH=" not in out.replace("PYTHONPATH=", "") and not (tmp_path / "w" / "bin").exists()
