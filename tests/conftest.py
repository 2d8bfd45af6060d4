"""Shared fixtures: a fresh site per test, and the fixture modules every test may use.

Fixtures of tests/fixtures/ are registered here, once, through ``pytest_plugins``: a test names
``sshd``, ``nginx_server``, ``demo_site``... as a parameter and never imports the fixture itself
(importing it by name shadowed the parameter, one ruff F811 per use). Import only the types and
constants (``SshdServer``, ``PLAIN_ARCH``, ``DEMO_NOW``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import build_find_links, init_site

pytest_plugins = [
    "fixtures.sshd",
    "fixtures.nginx",
    "fixtures.demo",
    "fixtures.hostile_http",
    "fixtures.slurm",
    "fixtures.cvmfs",
    "fixtures.squid",
    "fixtures.agent",
]

KINDS = ("unit", "cli", "integration", "tui", "adversarial")


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """A freshly initialised site (through the real CLI)."""
    return init_site(tmp_path / "site")


@pytest.fixture(scope="module")
def find_links(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local find-links dir: purepkg as a wheel, vecext (C extension) as an sdist."""
    return build_find_links(tmp_path_factory.mktemp("pysrc"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with its folder's kind (unit, cli, integration, tui, adversarial): ``-m "not integration"``
    is the fast loop that needs no sshd or nginx."""
    for item in items:
        kind = Path(str(item.fspath)).parent.name
        if kind in KINDS:
            item.add_marker(getattr(pytest.mark, kind))
