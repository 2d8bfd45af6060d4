"""Issue 18 item 17: one size format everywhere (``282 B``, never ``Bytes`` beside ``kB``), and
``gc --dry-run`` reports what it would free consistently with what it then deletes."""

from __future__ import annotations

from pathlib import Path

from console import render

from helpers import make_tree, publish, run_console, run_json


def test_small_sizes_use_the_same_unit_style():
    assert render.size(282) == "282 B"
    assert render.size(1) == "1 B"
    assert render.size(0) == "0 B"
    assert render.delta(282) == "+282 B"
    assert render.delta(-282) == "-282 B"
    assert render.size(1500) == "1.5 kB"
    assert "Byte" not in render.delta(999)


def test_gc_dry_run_frees_what_gc_then_deletes(site_dir: Path, tmp_path: Path) -> None:
    publish(site_dir, make_tree(tmp_path / "t", {"bin/tool": "hello\n"}))
    store = site_dir / "store"
    (store / "objects" / "ee").mkdir(exist_ok=True)
    (store / "objects" / "ee" / ("e" * 62)).write_bytes(b"x" * 282)
    (store / "packs").mkdir(exist_ok=True)
    (store / "packs" / ("f" * 64 + ".pack")).write_bytes(b"p" * 1234)
    dry = run_json(site_dir, "gc", "--dry-run")
    text = run_console(site_dir, "gc", "--dry-run").stdout
    real = run_json(site_dir, "gc")
    assert dry["unreferenced"] == real["deleted"] == 1
    assert dry["freed_bytes"] == real["freed_bytes"] == 282
    assert dry["orphan_pack_files"] == real["orphan_pack_files"]
    assert dry["pack_freed_bytes"] == real["pack_freed_bytes"] == 1234
    assert "282 B" in text and "1.2 kB" in text and "Byte" not in text
