"""Symlinks judged by where they resolve, per position in the image (issue 12 items 1 and 2).

The rule (DESIGN §3): a link target is relative and, resolved from the link's directory following
the image's own links component by component (at most 40 links per resolution, as the kernel),
stays inside the image. It holds at publish (from a directory), verify, export and node hydrate
(from a store someone wrote by hand), for every position of a subtree shared by several
directories. Legitimate relative links in subdirectories publish, verify, export and hydrate
exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from core.model.digest import canonical_json, digest_bytes
from core.model.manifest import MODE_DIR, MODE_FILE, MODE_LINK, Entry, tree_bytes
from core.store.local import LocalStore
from core.trust.signing import RELEASE_TYPE, load_key, make_envelope

from helpers import exported, hydrate, make_tree, promote, publish, run_console, run_json, tree_listing, trust_file

SECRET = "secret outside the roots\n"


def store_snapshot(site: Path) -> list[str]:
    return sorted(str(p.relative_to(site / "store")) for p in (site / "store").rglob("*"))


def assert_one_line(proc: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("console: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def no_escape(root: Path) -> None:
    """Nothing below ``root`` resolves outside it (every symlink's real path stays inside)."""
    top = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                real = os.path.realpath(p)
                assert real == top or real.startswith(top + "/"), (p, os.readlink(p), real)


# -- escaping shapes: image path -> target, each textually inside, resolved outside ---------------

ESCAPES = {
    "dot-link": ({"d": ".", "evil": "d/d/d/d/../../.."}, "evil"),
    "parent-link": ({"sub/up": "..", "evil": "sub/up/../secret.txt"}, "evil"),
    "parent-link-in-subdir": ({"sub/up": "..", "sub/evil": "up/../../etc"}, "sub/evil"),
    "chain": ({"l1": "l2", "l2": "sub/l3", "sub/l3": "../sub/up/..", "sub/up": ".."}, "sub/l3"),
    "deep-link-then-dotdot": ({"x/y/z/top": "../../..", "x/evil": "y/z/top/../../secret.txt"}, "evil"),
    "dir-link": ({"lib": "real/lib", "real/lib/up": "../..", "evil": "lib/up/../secret.txt"}, "evil"),
}


def escaping_tree(root: Path, links: dict[str, str]) -> Path:
    return make_tree(root, {"a.txt": "a\n", "real/lib/libz.so": "z"}, links=links)


@pytest.mark.parametrize("shape", sorted(ESCAPES))
def test_publish_refuses_links_escaping_through_links(site_dir: Path, tmp_path: Path, shape: str) -> None:
    links, named = ESCAPES[shape]
    src = escaping_tree(tmp_path / "src", links)
    before = store_snapshot(site_dir)
    proc = run_console(site_dir, "publish", "--name", "n", "--image", f"x86_64={src}")
    assert_one_line(proc, 2, "points outside the image", named)
    assert store_snapshot(site_dir) == before  # refused before anything was written


@pytest.mark.parametrize(
    "links, message",
    [
        ({"a": "b", "b": "a"}, "too many levels of symbolic links"),
        ({"self": "self"}, "too many levels of symbolic links"),
        ({"d/loop": "../d/loop/x"}, "too many levels of symbolic links"),
        ({f"c{i}": f"c{i + 1}" for i in range(45)} | {"c45": "a.txt"}, "too many levels of symbolic links"),
        ({"abs": "/etc/passwd"}, "absolute or invalid target"),
        ({"sub/abs": "/"}, "absolute or invalid target"),
    ],
    ids=["loop", "self-loop", "loop-through-dir", "chain-of-46", "absolute", "absolute-root"],
)
def test_publish_refuses_loops_and_absolute_targets(
    site_dir: Path, tmp_path: Path, links: dict[str, str], message: str
) -> None:
    src = escaping_tree(tmp_path / "src", links)
    before = store_snapshot(site_dir)
    proc = run_console(site_dir, "publish", "--name", "n", "--image", f"x86_64={src}")
    assert_one_line(proc, 2, message)
    assert store_snapshot(site_dir) == before


def test_publish_refuses_a_shared_subtree_escaping_where_it_sits_shallower(site_dir: Path, tmp_path: Path) -> None:
    # a/b/shared and shared are identical directories (one tree digest); up -> ../../x is inside at
    # a/b/shared (-> a/x) and outside at shared (-> ../x).
    src = make_tree(tmp_path / "src", {"a/b/shared/f": "f", "shared/f": "f"})
    os.symlink("../../x", src / "a/b/shared/up")
    os.symlink("../../x", src / "shared/up")
    before = store_snapshot(site_dir)
    proc = run_console(site_dir, "publish", "--name", "n", "--image", f"x86_64={src}")
    assert_one_line(proc, 2, "link shared/up points outside the image")
    assert store_snapshot(site_dir) == before


# -- the same shapes in a store written by hand: verify, export and hydrate refuse them ----------


def craft_image(store: LocalStore, spec: dict) -> str:
    """Write the trees (and file objects) of ``spec`` (name -> bytes | dict | ("link", target)); the root."""
    entries = []
    for name, value in spec.items():
        if isinstance(value, dict):
            digest = craft_image(store, value)
            entries.append(Entry(name, "dir", MODE_DIR, 0, digest))
        elif isinstance(value, tuple):
            entries.append(Entry(name, "link", MODE_LINK, len(value[1].encode()), target=value[1]))
        else:
            digest = digest_bytes(value)
            store.put_object(digest, value)
            entries.append(Entry(name, "file", MODE_FILE, len(value), digest))
    data = tree_bytes(entries)
    store.put_object(digest_bytes(data), data)
    return digest_bytes(data)


def craft_release(site: Path, spec: dict) -> str:
    """A release of image x86_64 = ``spec``, signed with the site's own key (a publisher bypassing checks)."""
    store = LocalStore.open(site / "store")
    root = craft_image(store, spec)
    payload = canonical_json(
        {
            "type": "depot-release",
            "schema": 1,
            "name": "crafted",
            "label": "",
            "created": "2026-11-21T12:00:00Z",
            "parent": None,
            "builder": {"kind": "tree"},
            "source": {"files": {}, "packages": []},
            "images": {"x86_64": {"root": root, "files": 1, "bytes": 2, "cpu_target": "generic"}},
            "smoke": None,
        }
    )
    rid = digest_bytes(payload)
    env = make_envelope(RELEASE_TYPE, payload, [load_key(site / "keys" / "signing.pem")])
    store.write_file(f"releases/{rid[7:]}.json", env)
    return rid


def L(target: str) -> tuple[str, str]:
    return ("link", target)


SHARED = {"up": L("../../../../../secret.txt"), "f": b"f\n"}  # inside at a/b/c/d/e/shared, outside at shared
UPS = "up/sub/up/sub/up/sub/up"  # sub/up -> .. : four times the image root, textually four levels down
CRAFTED = {
    # image at <node>/releases/<hex>/x86_64: four levels up is the directory holding the node root
    "dot-link": ({"d": L("."), "evil": L("d/d/d/d/d/../../../../secret.txt")}, "evil"),
    "parent-link": ({"sub": {"up": L("..")}, "evil": L(f"sub/{UPS}/../../../../secret.txt")}, "evil"),
    "chain": (
        {"l1": L("l2"), "l2": L("sub/l3"), "sub": {"l3": L(f"{UPS}/../../../../secret.txt"), "up": L("..")}},
        "sub/l3",
    ),
    "textual": ({"lib": {"evil": L("../../../../../secret.txt")}}, "lib/evil"),
    "shared-subtree": ({"a": {"b": {"c": {"d": {"e": {"shared": SHARED}}}}}, "shared": SHARED}, "shared/up"),
}


@pytest.mark.parametrize("shape", sorted(CRAFTED))
def test_crafted_escapes_refused_by_verify_export_and_hydrate(site_dir: Path, tmp_path: Path, shape: str) -> None:
    spec, named = CRAFTED[shape]
    rid = craft_release(site_dir, {"a.txt": b"a\n", **spec})
    (tmp_path / "secret.txt").write_text(SECRET)

    ver = run_console(site_dir, "verify", rid[7:], "--deep", "--json")
    assert ver.returncode == 1, ver.stderr
    problems = json.loads(ver.stdout)["problems"]
    assert [p["kind"] for p in problems] == ["bad-link"], problems
    assert problems[0]["path"] == named and "points outside the image" in problems[0]["detail"]

    out = tmp_path / "out"
    assert_one_line(run_console(site_dir, "export", rid, "--arch", "x86_64", str(out)), 2, "points outside the image")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["secret.txt", "site"]

    promote(site_dir, rid)
    node = tmp_path / "node"
    proc = hydrate(node, str(site_dir / "store"), trust_file(site_dir), check=None)
    assert_one_line(proc, 2, "points outside the image")
    assert not (node / "current" / "production").exists()
    assert not list((node / "releases").glob("*/x86_64"))
    no_escape(node)


def test_crafted_loop_refused_by_export_and_hydrate(site_dir: Path, tmp_path: Path) -> None:
    rid = craft_release(site_dir, {"a.txt": b"a\n", "x": L("y"), "y": L("./x")})
    out = tmp_path / "out"
    proc = run_console(site_dir, "export", rid, "--arch", "x86_64", str(out))
    assert_one_line(proc, 2, "too many levels of symbolic links")
    assert not out.exists()
    promote(site_dir, rid)
    node = tmp_path / "node"
    assert_one_line(hydrate(node, str(site_dir / "store"), trust_file(site_dir), check=None), 2, "too many levels")
    assert not (node / "current" / "production").exists()


def test_crafted_absolute_target_refused(site_dir: Path, tmp_path: Path) -> None:
    rid = craft_release(site_dir, {"a.txt": b"a\n", "sub": {"abs": L("/etc/passwd")}})
    out = tmp_path / "out"
    proc = run_console(site_dir, "export", rid, "--arch", "x86_64", str(out))
    assert_one_line(proc, 2, "absolute or invalid target")
    assert not out.exists()


# -- legitimate links in subdirectories: publish, verify, export and hydrate exactly ---------------

LEGIT = {
    "pkg/sub/up": "../a.txt",
    "pkg/sub/deeper/top": "../../..",
    "pkg/sub/deeper/sibling": "../../other/b.txt",
    # jll-like artifacts
    "artifacts/0123abcd/lib/libfoo.so": "libfoo.so.1",
    "artifacts/0123abcd/lib/libfoo.so.1": "libfoo.so.1.2.3",
    "artifacts/0123abcd/lib/share": "../share",
    "artifacts/0123abcd/lib/julia/libfoo.so": "../libfoo.so",
    # links through links that stay inside
    "bin/X11": ".",
    "bin/via-x11": "X11/X11/X11/tool",
    "pkg/lib64": "lib",
    "pkg/lib/up": "..",
    "pkg/through": "lib64/up/a.txt",
    "pkg/up-and-back": "lib/up/../pkg/a.txt",
    # Python package data
    "python/site-packages/mod/data": "../../../share/mod",
    # dangling but inside
    "pkg/lib/dangling": "nothing.so",
    # the same subtree at two depths, inside at both
    "share/mod/same/up": "..",
    "pkg/nest/same/up": "..",
}


def legit_tree(root: Path) -> Path:
    return make_tree(
        root,
        {
            "pkg/a.txt": "a\n",
            "pkg/sub/x.txt": "x\n",
            "pkg/sub/deeper/y.txt": "y\n",
            "pkg/other/b.txt": "b\n",
            "pkg/lib/libbar.so": b"\x7fELFbar",
            "bin/tool": "#!/bin/sh\necho tool\n",
            "artifacts/0123abcd/lib/libfoo.so.1.2.3": b"\x7fELFfoo",
            "artifacts/0123abcd/share/licenses/foo": "MIT\n",
            "share/mod/data.json": "{}\n",
            "share/mod/same/f": "f\n",
            "pkg/nest/same/f": "f\n",
            "python/site-packages/mod/__init__.py": "",
        },
        links=LEGIT,
        executables=("bin/tool",),
        empty_dirs=("pkg/empty/deep",),
    )


def test_legitimate_subdirectory_links_round_trip(site_dir: Path, tmp_path: Path) -> None:
    src = legit_tree(tmp_path / "src")
    want = tree_listing(src)
    rid = publish(site_dir, src)
    assert run_json(site_dir, "verify", rid[7:], "--deep")["ok"] is True
    assert exported(site_dir, rid, tmp_path / "export") == want

    promote(site_dir, rid)
    node = tmp_path / "node"
    doc = json.loads(hydrate(node, str(site_dir / "store"), trust_file(site_dir)).stdout)
    assert doc["release"] == rid
    image = node / "current" / "production"
    assert tree_listing(image) == want
    assert (image / "pkg/sub/up").read_text() == "a\n"
    assert (image / "pkg/through").read_text() == "a\n"
    assert (image / "bin/via-x11").read_text().startswith("#!/bin/sh")
    assert (image / "artifacts/0123abcd/lib/julia/libfoo.so").read_bytes() == b"\x7fELFfoo"
    assert os.readlink(image / "artifacts/0123abcd/lib/share") == "../share"
    no_escape(node)


def test_legitimate_links_in_a_crafted_store(site_dir: Path, tmp_path: Path) -> None:
    # a tree whose links are only valid at their position (checked as if at the root, they leave)
    spec = {"a.txt": b"a\n", "p": {"q": {"r": {"up": L("../../../a.txt"), "f": b"f\n"}}}}
    rid = craft_release(site_dir, spec)
    assert run_json(site_dir, "verify", rid[7:], "--deep")["ok"] is True
    listing = exported(site_dir, rid, tmp_path / "export")
    assert listing["p/q/r/up"] == ("link", None, "../../../a.txt")
    assert (tmp_path / "export/p/q/r/up").read_text() == "a\n"
