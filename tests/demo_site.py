"""A deterministic demo site for TUI tests: built once per session, copied per test.

The clock is pinned (``DEMO_NOW``) while building and while the app runs, and the demo derives
its signing key from the seed, so release ids, pointers and every rendered time are the same on
every run (SVG snapshots rely on it).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from core.demo.site import build_demo

DEMO_NOW = "2026-11-21T12:00:00Z"


@pytest.fixture(scope="session")
def demo_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo-master") / "site"
    old = os.environ.get("DEPOT_CONSOLE_NOW")
    os.environ["DEPOT_CONSOLE_NOW"] = DEMO_NOW
    try:
        build_demo(root, seed=0)
    finally:
        if old is None:
            os.environ.pop("DEPOT_CONSOLE_NOW", None)
        else:
            os.environ["DEPOT_CONSOLE_NOW"] = old
    return root


@pytest.fixture
def demo_site(demo_master: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the demo site with the clock pinned and a fixed actor."""
    dest = tmp_path / "site"
    shutil.copytree(demo_master, dest, symlinks=True)
    monkeypatch.setenv("DEPOT_CONSOLE_NOW", DEMO_NOW)
    monkeypatch.setenv("DEPOT_ACTOR", "tester@console")
    return dest
