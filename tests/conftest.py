"""Shared fixtures: a fresh site per test."""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers import init_site

KINDS = ("unit", "cli", "integration", "tui")


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """A freshly initialised site (through the real CLI)."""
    return init_site(tmp_path / "site")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with its folder's kind (unit, cli, integration, tui): ``-m "not integration"``
    is the fast loop that needs no sshd or nginx."""
    for item in items:
        kind = Path(str(item.fspath)).parent.name
        if kind in KINDS:
            item.add_marker(getattr(pytest.mark, kind))
