"""Issue 12 item 9: modes are explicit whatever the umask; hooks are refused from a loose config.

Every verb runs in a child process with ``umask 000``: the site directory, keys/ and logs/ are 0700,
keys and console.toml 0600, state.db 0600, the store readable by all and writable by none but its
owner (directories 0755, files 0644 or 0444), the node root not writable by others. A config that
declares publish hooks and that others can change is refused (exit 4, one line) and no hook runs.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from limits import run_console_limited

from helpers import make_tree, set_config, write_script

TRUST_FAILURE = 4
LOOSE = 0o000


def console(site: Path | None, *args: str, check: int | None = 0, umask: int = LOOSE, **kw):
    proc = run_console_limited(site, *args, limit=None, umask=umask, **kw)
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def loose_entries(root: Path, forbidden: int) -> list[str]:
    """Entries under ``root`` (itself included) with any of the ``forbidden`` bits; links skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [".", *dirnames, *filenames]:
            p = Path(dirpath) / name
            if not p.is_symlink() and mode(p) & forbidden:
                found.append(f"{p.relative_to(root)} {mode(p):04o}")
    return found


@pytest.fixture
def loose_site(tmp_path: Path) -> Path:
    """A site made by ``console init`` under umask 000, with one published release."""
    site = tmp_path / "site"
    console(site, "init")
    tree = make_tree(tmp_path / "tree", {"bin/tool": "#!/bin/sh\n", "share/a.txt": "a\n"}, executables=("bin/tool",))
    console(site, "publish", "--name", "demo", "--image", f"x86_64={tree}", "--label", "1")
    return site


def test_init_and_publish_under_umask_000_set_explicit_modes(loose_site: Path) -> None:
    site = loose_site
    assert mode(site) == 0o700
    assert mode(site / "keys") == 0o700
    assert mode(site / "keys" / "signing.pem") == 0o600
    assert mode(site / "console.toml") == 0o600
    assert mode(site / "state.db") == 0o600
    assert mode(site / "logs") == 0o700
    # Everything but the store is the operator's only (SQLite gives -wal/-shm the database's mode).
    assert [e for e in loose_entries(site, 0o077) if not e.startswith(("store", ". "))] == []
    store = site / "store"
    assert {mode(store / d) for d in ("", "objects", "releases", "channels")} == {0o755}
    assert mode(store / "store.json") == 0o644
    assert loose_entries(store, 0o022) == []  # nothing in the store writable by group or others
    readable = [p for p in store.rglob("*") if not p.is_symlink() and mode(p) & 0o004 == 0]
    assert readable == []  # and everything readable by all (nginx, nodes)
    assert any((store / "objects").rglob("*"))


def test_keys_and_config_rewrites_keep_their_modes_under_umask_000(loose_site: Path) -> None:
    console(loose_site, "keys", "generate")
    assert mode(loose_site / "keys" / "signing-1.pem") == 0o600
    assert mode(loose_site / "keys" / "signing-1.pub.pem") == 0o644
    assert mode(loose_site / "console.toml") == 0o600  # rewritten by keys generate
    assert loose_entries(loose_site / "keys", 0o077 & ~0o044) == []


def test_build_logs_are_private_under_umask_000(loose_site: Path, tmp_path: Path) -> None:
    script = write_script(tmp_path / "b.sh", 'echo building; touch "$DEPOT_OUT/ok"\n')
    console(loose_site, "build", str(script), "--builder", "command", "--arch", "x86_64")
    logs = loose_site / "logs"
    assert mode(logs) == 0o700
    assert sorted(p.name for p in logs.iterdir()) == ["build-1.log"]
    assert mode(logs / "build-1.log") & 0o077 == 0


def test_node_root_under_umask_000_is_not_writable_by_others(loose_site: Path, tmp_path: Path) -> None:
    rid = json.loads(console(loose_site, "releases", "--json").stdout)[0]["id"]
    console(loose_site, "promote", rid, "--channel", "production", "--create")
    trust = tmp_path / "trust.json"
    trust.write_text(console(loose_site, "keys", "export", "--json").stdout)
    root = tmp_path / "node"
    args = ["--root", str(root), "--store", str(loose_site / "store"), "--trust", str(trust)]
    console(None, "node", "hydrate", *args, "--channel", "production", "--json")
    assert mode(root) == 0o755
    for d in ("cache", "cache/objects", "cache/trees", "cache/tmp", "releases", "current", "writable"):
        assert mode(root / d) == 0o755, d
    assert loose_entries(root, 0o002) == []  # nothing under the node root writable by others
    assert (root / "current" / "production" / "share" / "a.txt").read_text() == "a\n"


# ---- hooks from a config others can change ----


@pytest.fixture
def hooked_site(loose_site: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    ran = tmp_path / "hook-ran"
    hook = write_script(tmp_path / "hook.sh", f'touch "{ran}"\n')
    set_config(loose_site, "publish", "pre_publish", str(hook))
    tree = make_tree(tmp_path / "tree2", {"b.txt": "b\n"})
    return loose_site, tree, ran


@pytest.mark.parametrize(
    ("target", "bits", "who"),
    [
        ("console.toml", 0o666, "group and others (mode 0666)"),
        ("console.toml", 0o602, "others (mode 0602)"),
        ("console.toml", 0o620, "group (mode 0620)"),
        (".", 0o777, "group and others (mode 0777)"),
        (".", 0o770, "group (mode 0770)"),
    ],
)
def test_hooks_refused_from_a_config_others_can_write(
    hooked_site: tuple[Path, Path, Path], target: str, bits: int, who: str
) -> None:
    site, tree, ran = hooked_site
    path = (site / target).resolve()
    os.chmod(path, bits)
    proc = console(site, "publish", "--name", "demo", "--image", f"x86_64={tree}", check=TRUST_FAILURE, umask=0o022)
    kind = "file" if target == "console.toml" else "directory"
    assert proc.stderr == (
        f"console: {site / 'console.toml'} declares publish hooks, which run as you, but the {kind} {path} "
        f"is writable by {who}: refused; chmod go-w {path}\n"
    )
    assert not ran.exists()
    # Fixed as the message says, the same publish runs its hook.
    os.chmod(path, bits & ~0o022)
    console(site, "publish", "--name", "demo", "--image", f"x86_64={tree}", umask=0o022)
    assert ran.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_hooks_refused_from_a_config_owned_by_someone_else(hooked_site: tuple[Path, Path, Path]) -> None:
    site, tree, ran = hooked_site
    os.chown(site / "console.toml", 4242, -1)
    proc = console(site, "publish", "--name", "demo", "--image", f"x86_64={tree}", check=TRUST_FAILURE)
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"file {site / 'console.toml'} is owned by uid 4242, not by you: refused" in proc.stderr
    assert not ran.exists()


def test_sticky_directory_and_hookless_loose_config_are_accepted(loose_site: Path, tmp_path: Path) -> None:
    os.chmod(loose_site / "console.toml", 0o666)  # no hook: nothing runs from it (see README)
    console(loose_site, "releases", "--json")
    os.chmod(loose_site / "console.toml", 0o600)
    hook = write_script(tmp_path / "hook.sh", "true\n")
    set_config(loose_site, "publish", "post_publish", str(hook))
    os.chmod(loose_site, 0o1777)  # sticky, like /tmp: others cannot replace our file
    console(loose_site, "releases", "--json")
