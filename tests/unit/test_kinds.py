"""core.kinds: the Kind protocol, its registry, and what the Julia and Python kinds answer."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import core.arch
import core.kinds.packages
from core.errors import BadInput
from core.kinds import (
    FINGERPRINT_ENV,
    Kind,
    all_kinds,
    detect_kind,
    get_kind,
    image_cpu_target,
    image_kinds,
    kind_for,
    known_kinds,
    tree_source,
)
from core.kinds import julia as jl
from core.kinds import python as py
from core.kinds.base import fingerprint_of, read_module_list

JULIA = kind_for("julia")
PYTHON = kind_for("python")

MANIFEST = """\
julia_version = "1.10.4"
manifest_format = "2.0"

[[deps.Example]]
git-tree-sha1 = "46e44e869b4d90b96bd8ed1fdcf32244fddfb6cc"
uuid = "7876af07-990d-54b4-ab0e-23690620f79a"
version = "0.5.3"

[[deps.Dates]]
uuid = "ade2ca70-3891-5945-98fb-dc099432e06a"
"""
PROJECT = '[deps]\nExample = "7876af07-990d-54b4-ab0e-23690620f79a"\n'


def julia_tree(root: Path, *versions: str) -> Path:
    for v in versions or ("1.10",):
        env = root / "environments" / f"v{v}"
        env.mkdir(parents=True)
        (env / "Project.toml").write_text(PROJECT)
        (env / "Manifest.toml").write_text(MANIFEST)
    return root


def python_tree(root: Path) -> Path:
    (root / "lib" / "python").mkdir(parents=True)
    return root


# --- registry ------------------------------------------------------------------------------------


def test_registry_names_and_order() -> None:
    assert known_kinds() == ("julia", "python")
    assert [k.name for k in all_kinds()] == ["julia", "python"]
    assert isinstance(JULIA, jl.Julia) and isinstance(PYTHON, py.Python)
    assert all(isinstance(k, Kind) for k in all_kinds())
    assert (JULIA.label, PYTHON.label) == ("Julia", "Python")
    assert kind_for("julia") is JULIA  # one stateless instance per kind


def test_unknown_kinds() -> None:
    assert get_kind("command") is None and get_kind("tree") is None
    assert get_kind("python") is PYTHON
    with pytest.raises(BadInput) as info:
        kind_for("tree")
    assert str(info.value) == "unknown kind 'tree' (known: julia, python)"


def test_the_protocol_is_abstract() -> None:
    with pytest.raises(TypeError):
        Kind()  # type: ignore[abstract]


# --- detection -----------------------------------------------------------------------------------


def test_detect_julia_python_both_and_neither(tmp_path: Path) -> None:
    j = julia_tree(tmp_path / "j")
    p = python_tree(tmp_path / "p")
    both = python_tree(julia_tree(tmp_path / "both"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert detect_kind(j) is JULIA and detect_kind(p) is PYTHON
    assert detect_kind(both) is JULIA  # Julia takes precedence
    assert detect_kind(empty) is None
    assert image_kinds(both) == [JULIA, PYTHON]
    assert image_kinds(j) == [JULIA] and image_kinds(p) == [PYTHON] and image_kinds(empty) == []


def test_detection_needs_a_versioned_environment_with_a_manifest(tmp_path: Path) -> None:
    (tmp_path / "environments" / "shared").mkdir(parents=True)
    (tmp_path / "environments" / "shared" / "Manifest.toml").write_text(MANIFEST)
    (tmp_path / "environments" / "v1.11").mkdir()  # no Manifest.toml
    assert not JULIA.detect(tmp_path)
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "python").write_text("a file, not the package dir")
    assert not PYTHON.detect(tmp_path)


def test_builder_kind_counts_even_without_the_layout(tmp_path: Path) -> None:
    assert image_kinds(tmp_path, "julia") == [JULIA]
    assert image_kinds(tmp_path, "python") == [PYTHON]
    assert image_kinds(python_tree(tmp_path), "julia") == [JULIA, PYTHON]
    assert image_kinds(tmp_path / "x", "command") == []


def test_newest_environment_compares_versions_numerically(tmp_path: Path) -> None:
    julia_tree(tmp_path, "1.9", "1.10", "1.2")
    assert jl.newest_environment(tmp_path) == tmp_path / "environments" / "v1.10"
    assert jl.find_julia_environment(tmp_path) == tmp_path / "environments" / "v1.10" / "Manifest.toml"
    (tmp_path / "environments" / "v1.11").mkdir()
    (tmp_path / "environments" / "v1.11" / "Project.toml").write_text(PROJECT)
    assert jl.newest_environment(tmp_path, "Project.toml") == tmp_path / "environments" / "v1.11"
    assert jl.newest_environment(tmp_path) == tmp_path / "environments" / "v1.10"


# --- what publish records ------------------------------------------------------------------------


def test_tree_source_of_a_julia_depot(tmp_path: Path) -> None:
    src = tree_source(julia_tree(tmp_path))
    assert src is not None
    assert src.packages == [
        {"name": "Dates", "uuid": "ade2ca70-3891-5945-98fb-dc099432e06a", "version": ""},
        {"name": "Example", "uuid": "7876af07-990d-54b4-ab0e-23690620f79a", "version": "0.5.3"},
    ]
    env = tmp_path / "environments" / "v1.10"
    assert src.files == {"Project.toml": env / "Project.toml", "Manifest.toml": env / "Manifest.toml"}
    assert src.environment == "environments/v1.10"


def test_no_tree_source_for_python_or_plain_trees(tmp_path: Path) -> None:
    assert tree_source(python_tree(tmp_path / "p")) is None
    assert PYTHON.tree_source(tmp_path / "p") is None
    (tmp_path / "e").mkdir()
    assert tree_source(tmp_path / "e") is None


def test_image_cpu_target(tmp_path: Path) -> None:
    j, p = julia_tree(tmp_path / "j"), python_tree(tmp_path / "p")
    plain = tmp_path / "plain"
    plain.mkdir()
    assert image_cpu_target(j, "x86_64_v3") == "x86-64-v3"
    assert image_cpu_target(j, "zen3", builder_kind="tree") == "znver3"
    assert image_cpu_target(plain, "haswell", builder_kind="julia") == "haswell"
    assert image_cpu_target(p, "x86_64_v3") == "" and image_cpu_target(plain, "x86_64_v3") == ""
    assert image_cpu_target(p, "x86_64_v3", builder_kind="python") == ""
    assert image_cpu_target(j, "x86_64_v3", explicit="generic;haswell,clone_all") == "generic;haswell,clone_all"
    assert image_cpu_target(p, "zen3", builder_kind="python", explicit="zen3") == "zen3"


# --- CPU targets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "julia_target"),
    [("x86_64", "generic"), ("x86_64_v3", "x86-64-v3"), ("zen3", "znver3"), ("neoverse_v1", "neoverse-v1")],
)
def test_build_targets(arch: str, julia_target: str) -> None:
    assert JULIA.build_target(arch) == JULIA.image_target(arch) == julia_target
    assert PYTHON.build_target(arch) == arch
    assert PYTHON.image_target(arch) == ""


def test_unknown_arch_is_bad_input() -> None:
    with pytest.raises(BadInput, match="unknown micro-architecture 'znver3'"):
        JULIA.build_target("znver3")


def test_arch_and_packages_still_name_the_moved_functions() -> None:
    assert not hasattr(core.arch, "julia_cpu_target")  # Julia's tables live in core.kinds.julia only
    assert core.kinds.packages.julia_manifest_packages is jl.julia_manifest_packages
    assert core.kinds.packages.requirements_packages is py.requirements_packages
    with pytest.raises(AttributeError):
        core.arch.no_such_name  # noqa: B018
    assert core.arch.llvm_cpu_name("zen4") == "znver4"


# --- node variables ------------------------------------------------------------------------------


def test_julia_node_env(tmp_path: Path) -> None:
    image = julia_tree(tmp_path / "img", "1.9", "1.10")
    writable = tmp_path / "writable" / "julia"
    env = JULIA.node_env(image, arch="x86_64_v3", cpu_target="", writable=writable)
    assert env == {
        "JULIA_DEPOT_PATH": f"{writable}:{image}:",
        "JULIA_PROJECT": str(image / "environments" / "v1.10"),
        "JULIA_PKG_OFFLINE": "true",
        "JULIA_CPU_TARGET": "x86-64-v3",
    }
    assert list(env) == ["JULIA_DEPOT_PATH", "JULIA_PROJECT", "JULIA_PKG_OFFLINE", "JULIA_CPU_TARGET"]
    assert writable.is_dir()


def test_julia_node_env_uses_the_manifest_target_and_falls_back_to_generic(tmp_path: Path) -> None:
    w = tmp_path / "w"
    env = JULIA.node_env(tmp_path, arch="zen3", cpu_target="generic;znver3,clone_all", writable=w)
    assert env["JULIA_CPU_TARGET"] == "generic;znver3,clone_all"
    assert "JULIA_PROJECT" not in env  # no environments/ in this image
    assert JULIA.node_env(tmp_path, arch="not-an-arch", cpu_target="", writable=w)["JULIA_CPU_TARGET"] == "generic"


def test_python_node_env(tmp_path: Path) -> None:
    image = python_tree(tmp_path / "img")
    writable = tmp_path / "writable" / "python"
    env = PYTHON.node_env(image, arch="x86_64", cpu_target="x86_64", writable=writable)
    assert env == {"PYTHONPATH": str(image / "lib" / "python"), "PYTHONDONTWRITEBYTECODE": "1"}
    assert not writable.exists()  # Python needs no writable layer


# --- build specs ---------------------------------------------------------------------------------


def test_build_env_drops_what_would_leak_into_a_build() -> None:
    base = {
        "PATH": "/usr/bin",
        "JULIA_DEPOT_PATH": "/home/me/.julia",
        "JULIA_PROJECT": "@.",
        "JULIA_PKG_SERVER": "https://pkg.example.org",
        "PYTHONPATH": "/home/me/lib",
        "PIP_USER": "1",
        "PIP_INDEX_URL": "https://pypi.example.org/simple",
    }
    assert JULIA.build_env(base) == {
        "PATH": "/usr/bin",
        "JULIA_PKG_SERVER": "https://pkg.example.org",
        "PYTHONPATH": "/home/me/lib",
        "PIP_USER": "1",
        "PIP_INDEX_URL": "https://pypi.example.org/simple",
    }
    assert PYTHON.build_env(base) == {
        "PATH": "/usr/bin",
        "JULIA_DEPOT_PATH": "/home/me/.julia",
        "JULIA_PROJECT": "@.",
        "JULIA_PKG_SERVER": "https://pkg.example.org",
        "PIP_INDEX_URL": "https://pypi.example.org/simple",
    }


def test_default_smoke_commands() -> None:
    assert JULIA.default_smoke(["Example", "JSON"]) == ["julia", "--startup-file=no", "-e", "using Example, JSON"]
    assert JULIA.default_smoke([]) == ["julia", "--startup-file=no", "-e", "nothing"]
    assert PYTHON.default_smoke(["numpy", "yaml"]) == ["python3", "-c", "import numpy, yaml"]
    assert PYTHON.default_smoke([]) == ["python3", "-c", "pass"]


def test_julia_spec(tmp_path: Path) -> None:
    spec = tmp_path / "proj"
    spec.mkdir()
    with pytest.raises(BadInput, match="has no Project.toml"):
        JULIA.validate_spec(spec)
    (spec / "Project.toml").write_text(PROJECT + 'JSON = "682c06a0-de6a-54ab-a142-c8b1cf79cde6"\n')
    (spec / "Manifest.toml").write_text(MANIFEST)
    with pytest.raises(BadInput) as info:
        JULIA.validate_spec(spec)
    assert str(info.value) == ("Manifest.toml lacks Project.toml deps JSON (run Pkg.resolve() and commit the Manifest)")
    (spec / "Project.toml").write_text(PROJECT)
    JULIA.validate_spec(spec)
    assert JULIA.spec_files(spec) == {"Project.toml": spec / "Project.toml", "Manifest.toml": spec / "Manifest.toml"}
    (spec / "LocalPreferences.toml").write_text("")
    assert list(JULIA.spec_files(spec)) == ["Project.toml", "Manifest.toml", "LocalPreferences.toml"]
    assert [p["name"] for p in JULIA.spec_packages(spec)] == ["Dates", "Example"]
    assert jl.direct_deps(spec) == ["Example"] and jl.compiled_packages(spec) == ["Example"]


def test_python_spec(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    with pytest.raises(BadInput, match="must be a requirements file"):
        PYTHON.validate_spec(req)
    req.write_text("# nothing\n")
    with pytest.raises(BadInput, match="lists no packages"):
        PYTHON.validate_spec(req)
    req.write_text("PyYAML==6.0.1\nsix==1.16.0\n")
    PYTHON.validate_spec(req)
    assert PYTHON.spec_files(req) == {"requirements.txt": req}
    assert PYTHON.spec_packages(req) == [
        {"name": "pyyaml", "uuid": "", "version": "6.0.1"},
        {"name": "six", "uuid": "", "version": "1.16.0"},
    ]


def test_parse_julia_version() -> None:
    assert jl.parse_julia_version("julia version 1.10.4\n") == ("1.10.4", "1.10")
    assert jl.environment_dir(Path("/d"), "1.10") == Path("/d/environments/v1.10")
    assert jl.compiled_dir(Path("/d"), "1.10") == Path("/d/compiled/v1.10")


# --- smoke tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cmd0", "julia", "python"),
    [
        ("julia", True, False),
        ("/opt/julia-1.10.4/bin/julia", True, False),
        ("julia-1.10", True, False),
        ("python3", False, True),
        ("/usr/bin/python3.12", False, True),
        ("python", False, True),
        ("pythonw", False, False),
        ("sh", False, False),
    ],
)
def test_runs(cmd0: str, julia: bool, python: bool) -> None:
    assert JULIA.runs([cmd0, "-e", "1"]) is julia
    assert PYTHON.runs([cmd0, "-c", "1"]) is python


def test_julia_warm_up_and_cold_start(tmp_path: Path) -> None:
    env: dict[str, str] = {}
    cmd = JULIA.warm_up(["julia", "-e", "using Example"], env, tmp_path)
    hook = tmp_path / "fingerprint_hook.jl"
    assert cmd == ["julia", "-L", str(hook), "-e", "using Example"]
    assert env == {"JULIA_DEBUG": "loading"}
    assert hook.read_text() == jl.JULIA_HOOK and "DEPOT_SMOKE_FINGERPRINT" in jl.JULIA_HOOK
    env2: dict[str, str] = {}
    assert JULIA.warm_up(["sh", "-c", "julia -e 1"], env2, tmp_path / "none") == ["sh", "-c", "julia -e 1"]
    assert env2 == {"JULIA_DEBUG": "loading"}  # a Julia image, another command: only the debug output
    cold_env: dict[str, str] = {}
    assert JULIA.cold_start(["julia", "-e", "1"], cold_env, tmp_path) == ["julia", "--compiled-modules=no", "-e", "1"]
    assert JULIA.cold_start(["sh"], cold_env, tmp_path) == ["sh"] and cold_env == {}


def test_python_warm_up_and_cold_start(tmp_path: Path) -> None:
    env = {"PYTHONPATH": "/img/lib/python"}
    cmd = PYTHON.warm_up(["python3", "-c", "import json"], env, tmp_path)
    hookdir = tmp_path / "pyhook"
    assert cmd == ["python3", "-c", "import json"]
    assert env == {"PYTHONPATH": f"{hookdir}{os.pathsep}/img/lib/python"}
    assert (hookdir / "sitecustomize.py").read_text() == py.PY_HOOK
    cold_env: dict[str, str] = {}
    assert PYTHON.cold_start(["python3", "-c", "1"], cold_env, tmp_path) == ["python3", "-B", "-c", "1"]
    assert cold_env == {"PYTHONPYCACHEPREFIX": str(tmp_path / "empty-pycache"), "PYTHONDONTWRITEBYTECODE": "1"}
    assert (tmp_path / "empty-pycache").is_dir()


def test_python_hook_writes_the_fingerprint(tmp_path: Path) -> None:
    """The sitecustomize hook really runs in a Python process and lists what it imported."""
    fp = tmp_path / "fingerprint"
    env = {"PATH": os.environ.get("PATH", ""), FINGERPRINT_ENV: str(fp)}
    cmd = PYTHON.warm_up([sys.executable, "-c", "import colorsys"], env, tmp_path)
    subprocess.run(cmd, env=env, check=True, cwd=tmp_path)
    result = PYTHON.read_fingerprint(fp, "")
    assert result is not None
    names = [m[0] for m in result["modules"]]
    assert "colorsys" in names and "sitecustomize" not in names
    import colorsys

    digest = "sha256:" + hashlib.sha256(Path(colorsys.__file__).read_bytes()).hexdigest()
    assert ["colorsys", digest] in result["modules"]
    assert result["count"] == len(result["modules"]) and result["digest"].startswith("sha256:")


def test_no_fingerprint_without_a_file(tmp_path: Path) -> None:
    assert PYTHON.read_fingerprint(tmp_path / "missing", "") is None
    assert JULIA.read_fingerprint(tmp_path / "missing", "") is None
    (tmp_path / "bad").write_text("not json")
    assert read_module_list(tmp_path / "bad") is None


REJECT_OUTPUT = """\
┌ Debug: Rejecting cache file /depot/compiled/v1.10/Example/abc_def.ji for Example \
[7876af07-990d-54b4-ab0e-23690620f79a] since the flags are mismatched
│   current session: use_pkgimages = true, debug_level = 1, check_bounds = 0
└ @ Base loading.jl:3000
ready
"""


def test_julia_rejected_caches_and_noise() -> None:
    assert JULIA.rejected_caches(REJECT_OUTPUT) == [
        {
            "package": "Example",
            "uuid": "7876af07-990d-54b4-ab0e-23690620f79a",
            "cache_file": "/depot/compiled/v1.10/Example/abc_def.ji",
        }
    ]
    assert JULIA.rejected_caches("Rejecting cache file /d/compiled/v1.10/JSON/x.ji.") == [
        {"package": "JSON", "uuid": "", "cache_file": "/d/compiled/v1.10/JSON/x.ji"}
    ]
    assert PYTHON.rejected_caches(REJECT_OUTPUT) == []
    lines = REJECT_OUTPUT.splitlines()
    assert [JULIA.is_noise(ln) for ln in lines] == [True, True, True, False]
    assert JULIA.is_noise("Loading object cache file /d/x.so for Example [7876af07-990d-54b4-ab0e-23690620f79a]")
    assert not any(PYTHON.is_noise(ln) for ln in lines)


def test_julia_fingerprint_hashes_the_loaded_cache_files(tmp_path: Path) -> None:
    cache = tmp_path / "Example.so"
    cache.write_bytes(b"pkgimage")
    (tmp_path / "fp").write_text(
        "Example\t7876af07-990d-54b4-ab0e-23690620f79a\t/src/Example.jl\nMain\t\t\nbroken-line\n"
    )
    output = f"Loading object cache file {cache} for Example [7876af07-990d-54b4-ab0e-23690620f79a]\n"
    result = JULIA.read_fingerprint(tmp_path / "fp", output)
    digest = "sha256:" + hashlib.sha256(b"pkgimage").hexdigest()
    assert result == fingerprint_of([["Example", "7876af07-990d-54b4-ab0e-23690620f79a", digest], ["Main", "", None]])
    assert result["count"] == 2 and result["modules"][0][0] == "Example"
