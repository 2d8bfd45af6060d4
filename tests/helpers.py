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
from typing import Any

CONSOLE = [sys.executable, "-m", "console.cli"]
REPO = Path(__file__).resolve().parent.parent


def run_console(
    site: Path | None, *args: str, env: dict | None = None, input: str | None = None, check: int | None = None
) -> subprocess.CompletedProcess:
    """Run ``console --headless [--site SITE] ARGS…`` as a real subprocess (text mode)."""
    full_env = dict(os.environ)
    full_env.pop("DEPOT_CONSOLE_SITE", None)
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    cmd = [*CONSOLE, "--headless"] + (["--site", str(site)] if site else []) + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, input=input)
    if check is not None:
        assert proc.returncode == check, (
            f"exit {proc.returncode}, wanted {check}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc


def run_json(site: Path, *args: str, check: int = 0, **kw) -> object:
    """Run a verb with ``--json`` and return the parsed document."""
    proc = run_console(site, *args, "--json", check=check, **kw)
    return json.loads(proc.stdout)


def make_tree(
    root: Path,
    files: dict[str, bytes | str],
    links: dict[str, str] | None = None,
    executables: tuple[str, ...] = (),
    empty_dirs: tuple[str, ...] = (),
) -> Path:
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
        {
            "bin/tool": f"#!/bin/sh\necho {variant}\n",
            "lib/libx.so.1.2": b"\x7fELF" + variant.encode() * 100,
            "share/doc/README": "hello\n",
            f"data/{variant}.txt": variant * 10,
        },
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
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(links),
            "./purepkg",
        ],
        cwd=root,
        check=True,
    )
    subprocess.run(
        [sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(links)!r})"],
        cwd=root / "vecext",
        check=True,
        stdout=subprocess.DEVNULL,
    )
    assert sorted(p.name for p in links.iterdir()) == ["purepkg-1.0-py3-none-any.whl", "vecext-1.0.tar.gz"]
    return links


def write_script(path: Path, body: str, executable: bool = True) -> Path:
    """A ``/bin/sh`` script (``set -e``) with ``body`` (dedented): builds, hooks, stand-ins.

    Executable (0755) unless ``executable=False`` (to test that a missing exec bit is refused).
    """
    path.write_text("#!/bin/sh\nset -e\n" + textwrap.dedent(body))
    if executable:
        path.chmod(0o755)
    return path


# -- publish, promote and hydrate through the CLI (the node-side tests' shared steps) --------------
def publish(site: Path, tree: Path, label: str = "", smoke: str | None = None) -> str:
    """``publish`` ``tree`` as image x86_64 of release "demo"; its id."""
    args = ["publish", "--name", "demo", "--image", f"x86_64={tree}", "--label", label]
    if smoke:
        args += ["--smoke", smoke]
    return run_json(site, *args)["release_id"]  # type: ignore[index]


def promote(site: Path, rid: str, channel: str = "production") -> dict:
    """``promote`` ``rid`` to ``channel``; the JSON document."""
    return run_json(site, "promote", rid, "--channel", channel, "--create")  # type: ignore[return-value]


def trust_file(site: Path) -> Path:
    """The site's trust set exported beside it (``trust.json``), as a node would be given it."""
    path = site.parent / "trust.json"
    path.write_text(run_console(site, "keys", "export", "--json", check=0).stdout)
    return path


def hydrate(root: Path, store: str, trust: Path, *extra: str, check: int | None = 0) -> subprocess.CompletedProcess:
    """``node hydrate --channel production --json`` of node ``root`` from ``store`` with ``trust``."""
    return run_console(
        None,
        "node",
        "hydrate",
        "--root",
        str(root),
        "--store",
        store,
        "--trust",
        str(trust),
        "--channel",
        "production",
        "--json",
        *extra,
        check=check,
    )


def exported(site: Path, rid: str, dest: Path) -> dict[str, tuple]:
    """``tree_listing`` of image x86_64 of ``rid`` exported to ``dest``."""
    run_console(site, "export", rid, "--arch", "x86_64", str(dest), check=0)
    return tree_listing(dest)


async def settle(pilot: Any) -> None:
    """TUI tests: let workers finish and their results land on screen (no sleeps)."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def press_settled(pilot: Any, *keys: str) -> None:
    """TUI tests: press each key and let what it started land on screen before the next."""
    for key in keys:
        await pilot.press(key)
        await settle(pilot)
