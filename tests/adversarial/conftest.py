"""Fixtures of the adversarial tests (tests/adversarial): hostile peers, one place for each."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hostile_sshd import HostileSshd, running_hostile_sshd


@pytest.fixture(scope="session")
def hostile_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileSshd]:
    """A loopback sshd whose flood nodes stream endless output (see tests/adversarial/hostile_sshd.py)."""
    with running_hostile_sshd(tmp_path_factory.mktemp("hostile-sshd")) as server:
        yield server
