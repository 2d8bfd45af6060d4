"""diff of two releases: packages, images, files with byte deltas, identical subtrees skipped."""

from __future__ import annotations

from pathlib import Path

from bench.depotgen import generate

from core.site.diff import diff_trees
from core.site.site import open_site
from core.store.trees import TreeReader

from helpers import make_tree, run_console, run_json


def test_diff_reports_exactly_the_three_bumped_julia_packages(site_dir: Path, tmp_path: Path) -> None:
    base, variant = tmp_path / "base", tmp_path / "variant"
    generate(base, scale=0.005, seed=1, variant=0)
    bumped = generate(variant, scale=0.005, seed=1, variant=1)["bumped"]
    a = run_json(
        site_dir,
        "publish",
        "--name",
        "jetreco",
        "--label",
        "1",
        "--image",
        f"x86_64={base}",
        "--image",
        f"x86_64_v3={base}",
    )["release_id"]
    b = run_json(
        site_dir,
        "publish",
        "--name",
        "jetreco",
        "--label",
        "2",
        "--image",
        f"x86_64={variant}",
        "--image",
        f"x86_64_v3={variant}",
    )["release_id"]
    doc = run_json(site_dir, "diff", a[7:15], b[7:15])
    changed = {p["name"]: (p["from"], p["to"]) for p in doc["packages"]["changed"]}
    assert len(changed) == 3
    assert changed == {x["name"]: (x["from"], x["to"]) for x in bumped}
    assert doc["packages"]["added"] == [] and doc["packages"]["removed"] == []
    assert doc["images_added"] == [] and doc["images_removed"] == []
    for img in doc["images"]:
        assert img["same"] is False
        assert "files" not in img  # only with --files
    files = run_json(site_dir, "diff", a, b, "--files")["images"][0]["files"]
    touched = {f["path"].split("/")[1] for f in files if f["path"].startswith("packages/")}
    touched |= {f["path"].split("/")[2] for f in files if f["path"].startswith("compiled/v1.10/")}
    assert touched == set(changed)
    assert {f["path"] for f in files if not f["path"].startswith(("packages/", "compiled/"))} == {
        "environments/v1.10/Manifest.toml"
    }
    human = run_console(site_dir, "diff", a, b, check=0).stdout
    for name, (old, new) in changed.items():
        assert f"package {name}: {old} -> {new}" in human


def test_diff_byte_deltas_and_identical_subtrees_skipped(site_dir: Path, tmp_path: Path) -> None:
    common = {f"big/sub{i}/f{j}": "x" * 100 for i in range(20) for j in range(20)}
    a_src = make_tree(tmp_path / "a", {**common, "m": "1234", "gone": "bye"})
    b_src = make_tree(tmp_path / "b", {**common, "m": "123456789", "new/n": "hello"})
    a = run_json(site_dir, "publish", "--name", "n", "--image", f"x86_64={a_src}")["release_id"]
    b = run_json(site_dir, "publish", "--name", "n", "--image", f"x86_64={b_src}", "--image", f"zen3={b_src}")[
        "release_id"
    ]
    doc = run_json(site_dir, "diff", a, b, "--files")
    assert doc["images_added"] == ["zen3"]
    img = doc["images"][0]
    assert (img["arch"], img["added"], img["removed"], img["modified"], img["bytes_delta"]) == ("x86_64", 1, 1, 1, 7)
    assert [(f["path"], f["change"], f["delta"]) for f in img["files"]] == [
        ("m", "modified", 5),
        ("new/n", "added", 5),
        ("gone", "removed", -3),
    ]
    # The 400 common files sit in one identical subtree: the walk reads 2 + 2 trees, not 400 entries.
    site = open_site(site_dir)
    reader = TreeReader(site.store)
    from core.site.catalogue import load_release

    ra, rb = load_release(site, a), load_release(site, b)
    diff_trees(reader, ra.images["x86_64"].root, rb.images["x86_64"].root)
    assert len(reader.cache) == 3  # root a, root b, new/ — big/ never opened
    site.close()
