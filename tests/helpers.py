"""Shared test helpers: run the real CLI in a subprocess, build and compare directory trees."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

CONSOLE = [sys.executable, "-m", "console.cli"]
REPO = Path(__file__).resolve().parent.parent


def run_console(site: Path | None, *args: str, env: dict | None = None, input: str | None = None,
                check: int | None = None) -> subprocess.CompletedProcess:
    """Run ``console --headless [--site SITE] ARGS…`` as a real subprocess (text mode)."""
    full_env = dict(os.environ)
    full_env.pop("DEPOT_CONSOLE_SITE", None)
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    cmd = [*CONSOLE, "--headless"] + (["--site", str(site)] if site else []) + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, input=input)
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}, wanted {check}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return proc


def run_json(site: Path, *args: str, check: int = 0, **kw) -> object:
    """Run a verb with ``--json`` and return the parsed document."""
    proc = run_console(site, *args, "--json", check=check, **kw)
    return json.loads(proc.stdout)


def make_tree(root: Path, files: dict[str, bytes | str], links: dict[str, str] | None = None,
              executables: tuple[str, ...] = (), empty_dirs: tuple[str, ...] = ()) -> Path:
    """Create a directory tree from a mapping of relative path -> content."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
    for rel in executables:
        os.chmod(root / rel, 0o755)
    for rel, target in (links or {}).items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, p)
    for rel in empty_dirs:
        (root / rel).mkdir(parents=True, exist_ok=True)
    return root


def tree_listing(root: Path) -> dict[str, tuple]:
    """Every entry below ``root``: path -> (type, exec bit, sha256 or link target)."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", None, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", None, None)
            else:
                out[rel] = ("file", bool(st.st_mode & 0o111), hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def init_site(path: Path) -> Path:
    run_console(path, "init", check=0)
    return path


def sample_tree(root: Path, variant: str = "a") -> Path:
    """A small depot-like tree with a file, an executable, a relative link and an empty dir."""
    return make_tree(
        root,
        {"bin/tool": f"#!/bin/sh\necho {variant}\n", "lib/libx.so.1.2": b"\x7fELF" + variant.encode() * 100,
         "share/doc/README": "hello\n", f"data/{variant}.txt": variant * 10},
        links={"lib/libx.so.1": "libx.so.1.2", "lib/libx.so": "libx.so.1"},
        executables=("bin/tool",),
        empty_dirs=("logs", "share/empty/nested"),
    )


def set_config(site: Path, section: str, key: str, value: object) -> None:
    """Edit one value of a site's console.toml."""
    import tomllib

    import tomli_w

    cfg = site / "console.toml"
    data = tomllib.loads(cfg.read_text())
    data.setdefault(section, {})[key] = value
    cfg.write_text(tomli_w.dumps(data))


PKGS = REPO / "tests" / "fixtures" / "pkgs"


def build_find_links(root: Path) -> Path:
    """An offline pip find-links dir under ``root``: purepkg as a wheel, vecext (C extension) as an sdist."""
    import shutil

    links = root / "links"
    links.mkdir()
    for name in ("purepkg", "vecext"):
        shutil.copytree(PKGS / name, root / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "--disable-pip-version-check", "-q", "-w", str(links), "./purepkg"], cwd=root, check=True)
    subprocess.run([sys.executable, "-c", f"from setuptools import build_meta; "
                    f"build_meta.build_sdist({str(links)!r})"], cwd=root / "vecext", check=True,
                   stdout=subprocess.DEVNULL)
    assert sorted(p.name for p in links.iterdir()) == ["purepkg-1.0-py3-none-any.whl", "vecext-1.0.tar.gz"]
    return links


def write_script(path: Path, body: str) -> Path:
    """An executable ``/bin/sh`` script (``set -e``) with ``body`` (dedented): builds, hooks, stand-ins."""
    path.write_text("#!/bin/sh\nset -e\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path
