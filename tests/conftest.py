"""Shared fixtures: a fresh site per test."""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers import init_site


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """A freshly initialised site (through the real CLI)."""
    return init_site(tmp_path / "site")
