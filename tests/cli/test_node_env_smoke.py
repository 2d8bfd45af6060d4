"""``console node env`` and ``console node smoke`` on hydrated depots.

Python: a real depot (``lib/python/pkg`` precompiled with ``compileall --invalidation-mode
unchecked-hash``) smoke-tested with the real ``python3``, warm and cold. Julia: there is no Julia on
test machines, so a stand-in ``julia`` script (below) checks the environment it is given, prints the
debug line format of Julia 1.10's loading code and writes the fingerprint file as the hook would.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, make_tree, run_console, run_json, tree_listing

PKG_SOURCE = "VALUE = 42\n\ndef answer():\n    return VALUE\n"
FOO_UUID = "7876af07-990d-54b4-ab0e-23690620f79a"

STANDIN_JULIA = r'''#!{python}
"""Stand-in julia for node smoke tests: checks env, prints loading debug lines, writes the fingerprint."""
import os, sys
args = sys.argv[1:]
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write(" ".join(args) + "\n")
depots = os.environ.get("JULIA_DEPOT_PATH", "")
parts = depots.split(":")
if len(parts) != 3 or parts[2] != "" or os.environ.get("JULIA_PKG_OFFLINE") != "true":
    print("standin: bad JULIA_DEPOT_PATH/JULIA_PKG_OFFLINE " + depots, file=sys.stderr)
    sys.exit(9)
if not os.path.isfile(os.path.join(os.environ.get("JULIA_PROJECT", "/none"), "Project.toml")):
    print("standin: JULIA_PROJECT has no Project.toml", file=sys.stderr)
    sys.exit(9)
image = parts[1]
cache = image + "/compiled/v1.10/Foo/abcde_fghij.so"
uuid = "{uuid}"
if "--compiled-modules=no" not in args and os.environ.get("JULIA_DEBUG") == "loading":
    if os.environ.get("STANDIN_REJECT"):
        print("\u250c Debug: Rejecting cache file " + cache.replace(".so", ".ji") + " for Foo [" + uuid + "] since the flags are mismatched", file=sys.stderr)
        print("\u2502   current session: use_pkgimages = true, debug_level = 1, check_bounds = 0, inline = true, opt_level = 2, --target = znver3", file=sys.stderr)
        print("\u2502   cache file:      use_pkgimages = true, debug_level = 1, check_bounds = 0, inline = true, opt_level = 2, --target = skylake", file=sys.stderr)
        print("\u2514 @ Base loading.jl:3010", file=sys.stderr)
    else:
        print("\u250c Debug: Loading object cache file " + cache + " for Foo [" + uuid + "]", file=sys.stderr)
        print("\u2514 @ Base loading.jl:1057", file=sys.stderr)
if "-L" in args:
    hook = args[args.index("-L") + 1]
    assert "atexit" in open(hook).read()
    with open(os.environ["DEPOT_SMOKE_FINGERPRINT"], "w") as f:
        f.write("Foo\t" + uuid + "\t" + image + "/packages/Foo/xyz/src/Foo.jl\n")
        f.write("Main\t\t\n")
print("julia standin ok")
'''


def _hydrate(site: Path, root: Path, tree: Path, smoke: str, tmp_path: Path, kind_julia: bool = False) -> str:
    rid = run_json(site, "publish", "--name", "demo", "--image", f"x86_64={tree}", "--smoke", smoke)["release_id"]
    run_json(site, "promote", rid, "--channel", "production", "--create")
    run_console(site, "node", "hydrate", "--root", str(root), "--channel", "production", check=0)
    return rid


@pytest.fixture
def python_depot(site_dir, tmp_path):
    tree = make_tree(tmp_path / "pydepot", {"lib/python/pkg/__init__.py": PKG_SOURCE, "bin/readme.txt": "hi\n"})
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "--invalidation-mode",
            "unchecked-hash",
            str(tree / "lib" / "python"),
        ],
        check=True,
    )
    assert list((tree / "lib/python/pkg/__pycache__").glob("__init__.*.pyc"))
    root = tmp_path / "node"
    rid = _hydrate(site_dir, root, tree, "python3 -c 'import pkg; assert pkg.answer() == 42'", tmp_path)
    return root, rid


def test_env_for_a_python_depot(python_depot):
    root, rid = python_depot
    image = root / "releases" / rid[7:] / "x86_64"
    env = run_json(None, "node", "env", "--root", str(root), "--channel", "production")
    assert env == {
        "DEPOT_CHANNEL": "production",
        "DEPOT_RELEASE": rid,
        "DEPOT_IMAGE": "x86_64",
        "DEPOT_IMAGE_DIR": str(image),
        # prepended to the caller's own (run_console's: the repository, then the inherited one)
        "PYTHONPATH": os.pathsep.join([str(image / "lib" / "python"), str(REPO), os.environ.get("PYTHONPATH", "")]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    assert run_json(None, "node", "env", "--root", str(root), "--channel", "production", "--shell", "json") == env
    fish = run_console(
        None, "node", "env", "--root", str(root), "--channel", "production", "--shell", "fish", check=0
    ).stdout
    assert f"set -gx PYTHONPATH '{env['PYTHONPATH']}'" in fish.splitlines()

    # eval "$(console node env …)" gives a shell that imports the delivered package
    console = f"{sys.executable} -m console.cli --headless"
    script = (
        f'eval "$({console} node env --root {root} --channel production)"; '
        'python3 -c "import pkg, sys; print(pkg.VALUE, pkg.__file__, sys.dont_write_bytecode)"'
    )
    out = subprocess.run(
        ["sh", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])),
    )
    assert out.stdout.split() == ["42", str(image / "lib/python/pkg/__init__.py"), "True"]


def test_smoke_python_depot_with_baseline(python_depot):
    root, rid = python_depot
    image = root / "releases" / rid[7:] / "x86_64"
    before = tree_listing(image)
    doc = run_json(None, "node", "smoke", "--root", str(root), "--channel", "production", "--baseline")
    assert (doc["ok"], doc["exit_code"], doc["baseline_exit_code"], doc["timed_out"]) == (True, 0, 0, False)
    assert doc["release"] == rid and doc["image"] == "x86_64" and doc["rejected_caches"] == []
    assert doc["wall_s"] > 0 and doc["baseline_s"] > 0
    assert doc["reduction"] == round(1 - doc["wall_s"] / doc["baseline_s"], 4)
    modules = dict((m[0], m[1]) for m in doc["fingerprint"]["modules"])
    assert modules["pkg"] == "sha256:" + hashlib.sha256(PKG_SOURCE.encode()).hexdigest()
    assert "sitecustomize" not in modules and doc["fingerprint"]["count"] == len(modules)
    assert set(doc) >= {
        "node",
        "release",
        "image",
        "ok",
        "wall_s",
        "baseline_s",
        "reduction",
        "exit_code",
        "output_tail",
        "rejected_caches",
        "fingerprint",
    }
    assert tree_listing(image) == before  # nothing written into the read-only image

    again = run_json(None, "node", "smoke", "--root", str(root), "--channel", "production")
    assert again["fingerprint"]["digest"] == doc["fingerprint"]["digest"] and again["baseline_s"] is None


def test_smoke_failure_and_timeout(site_dir, tmp_path):
    tree = make_tree(tmp_path / "t", {"lib/python/x.py": "X = 1\n"})
    root = tmp_path / "node"
    _hydrate(site_dir, root, tree, "python3 -c 'import x; print(\"boom\"); raise SystemExit(3)'", tmp_path)
    proc = run_console(None, "node", "smoke", "--root", str(root), "--channel", "production", "--json", check=1)
    doc = json.loads(proc.stdout)
    assert (doc["ok"], doc["exit_code"], doc["problem"]) == (False, 3, "exit code 3")
    assert doc["output_tail"] == "boom"

    tree2 = make_tree(tmp_path / "t2", {"lib/python/y.py": "Y = 1\n"})
    _hydrate(site_dir, root, tree2, "python3 -c 'import time; time.sleep(60)'", tmp_path)
    proc = run_console(
        None, "node", "smoke", "--root", str(root), "--channel", "production", "--timeout", "0.5", "--json", check=1
    )
    doc = json.loads(proc.stdout)
    assert (doc["ok"], doc["exit_code"], doc["timed_out"]) == (False, None, True)
    assert doc["problem"] == "timed out after 0.5s"


def test_env_and_smoke_need_a_hydrated_channel(tmp_path):
    proc = run_console(None, "node", "env", "--root", str(tmp_path / "n"), "--channel", "production", check=2)
    assert "not hydrated on this node" in proc.stderr


@pytest.fixture
def julia_depot(site_dir, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    julia = bindir / "julia"
    julia.write_text(STANDIN_JULIA.replace("{python}", sys.executable).replace("{uuid}", FOO_UUID))
    julia.chmod(0o755)
    tree = make_tree(
        tmp_path / "jdepot",
        {
            "environments/v1.10/Project.toml": f'[deps]\nFoo = "{FOO_UUID}"\n',
            "environments/v1.10/Manifest.toml": (
                f'julia_version = "1.10.4"\nmanifest_format = "2.0"\n\n'
                f'[[deps.Foo]]\nuuid = "{FOO_UUID}"\nversion = "1.0.0"\n'
            ),
            "packages/Foo/xyz/src/Foo.jl": "module Foo end\n",
            "compiled/v1.10/Foo/abcde_fghij.ji": b"ji-bytes",
            "compiled/v1.10/Foo/abcde_fghij.so": b"\x7fELF so-bytes",
        },
        executables=("compiled/v1.10/Foo/abcde_fghij.so",),
    )
    root = tmp_path / "node"
    rid = _hydrate(site_dir, root, tree, "julia --startup-file=no -e 'using Foo'", tmp_path)
    env = {"PATH": f"{bindir}:{os.environ['PATH']}", "STANDIN_LOG": str(tmp_path / "julia.log")}
    return root, rid, env, tmp_path / "julia.log"


def test_env_for_a_julia_depot(julia_depot, site_dir):
    root, rid, _, _ = julia_depot
    image = root / "releases" / rid[7:] / "x86_64"
    env = run_json(None, "node", "env", "--root", str(root), "--channel", "production")
    cpu_target = run_json(site_dir, "show", rid)["images"]["x86_64"]["cpu_target"]
    assert env["JULIA_DEPOT_PATH"] == f"{root}/writable/julia:{image}:"
    assert env["JULIA_PROJECT"] == str(image / "environments" / "v1.10")
    assert env["JULIA_PKG_OFFLINE"] == "true" and env["JULIA_CPU_TARGET"] == cpu_target == "generic"
    assert "PYTHONPATH" not in env


def test_smoke_julia_depot_fingerprint_and_baseline(julia_depot):
    root, rid, env, log = julia_depot
    image = root / "releases" / rid[7:] / "x86_64"
    proc = run_console(
        None, "node", "smoke", "--root", str(root), "--channel", "production", "--baseline", "--json", env=env, check=0
    )
    doc = json.loads(proc.stdout)
    assert (doc["ok"], doc["exit_code"], doc["baseline_exit_code"], doc["rejected_caches"]) == (True, 0, 0, [])
    assert doc["output_tail"] == "julia standin ok"
    so_digest = "sha256:" + hashlib.sha256(b"\x7fELF so-bytes").hexdigest()
    assert doc["fingerprint"]["modules"] == [["Foo", FOO_UUID, so_digest], ["Main", "", None]]
    warm, cold = log.read_text().splitlines()
    assert warm.startswith("-L ") and warm.endswith("--startup-file=no -e using Foo")
    assert cold == "--compiled-modules=no --startup-file=no -e using Foo"
    assert tree_listing(image)  # image intact


def test_smoke_julia_rejected_cache_fails(julia_depot):
    root, rid, env, _ = julia_depot
    proc = run_console(
        None,
        "node",
        "smoke",
        "--root",
        str(root),
        "--channel",
        "production",
        env=dict(env, STANDIN_REJECT="1"),
        check=1,
    )
    assert "FAILED (Julia rejected cache files of Foo)" in proc.stdout
    doc = json.loads(
        run_console(
            None,
            "node",
            "smoke",
            "--root",
            str(root),
            "--channel",
            "production",
            "--json",
            env=dict(env, STANDIN_REJECT="1"),
            check=1,
        ).stdout
    )
    image = root / "releases" / rid[7:] / "x86_64"
    assert doc["rejected_caches"] == [
        {"package": "Foo", "uuid": FOO_UUID, "cache_file": str(image / "compiled/v1.10/Foo/abcde_fghij.ji")}
    ]
    assert doc["exit_code"] == 0 and doc["ok"] is False


def test_probe_and_status_report_the_hydrated_channel(python_depot):
    root, rid = python_depot
    probe = run_json(None, "node", "probe", "--root", str(root))
    assert probe["channels"]["production"] == {
        "release": rid,
        "arch": "x86_64",
        "target": f"../releases/{rid[7:]}/x86_64",
        "exists": True,
    }
    human = run_console(None, "node", "probe", "--root", str(root), check=0).stdout
    assert f"channel  production: {rid[7:19]} x86_64" in human
    status = run_console(None, "node", "status", "--root", str(root), check=0).stdout
    assert f"production: {rid[7:19]} x86_64 (version 1" in status and "mark production: version 1" in status
