"""core.durable.atomic_write (the one atomic file write) and core.model.digest.resolve_release_ref."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.durable import atomic_write
from core.errors import Ambiguous, BadInput, NotFound
from core.model.digest import resolve_release_ref


def test_atomic_write_replaces_sets_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "f"
    assert atomic_write(path, b"one", 0o600) == 3
    assert atomic_write(path, [b"tw", b"o!"], 0o644, durable=False) == 4
    assert path.read_bytes() == b"two!" and path.stat().st_mode & 0o777 == 0o644
    assert os.listdir(tmp_path) == ["f"]


def test_atomic_write_without_overwrite_keeps_the_first(tmp_path: Path) -> None:
    path = tmp_path / "once"
    assert atomic_write(path, b"first", overwrite=False, tmp_prefix=".tmp-") == 5
    assert atomic_write(path, b"second", overwrite=False, tmp_prefix=".tmp-") == 0
    assert path.read_bytes() == b"first" and os.listdir(tmp_path) == ["once"]


def test_atomic_write_removes_the_temp_on_failure(tmp_path: Path) -> None:
    def chunks():
        yield b"partial"
        raise RuntimeError("source failed")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "f", chunks())
    assert os.listdir(tmp_path) == []


IDS = ["sha256:" + "ab" * 32, "sha256:" + "abcd" + "0" * 60, "sha256:" + "12" * 32]


def _matches(prefix: str) -> list[str]:
    return [r for r in IDS if r[7:].startswith(prefix)]


def test_resolve_release_ref() -> None:
    assert resolve_release_ref("1212", _matches) == IDS[2]
    assert resolve_release_ref(" SHA256:" + "12" * 32, _matches) == IDS[2]
    with pytest.raises(Ambiguous) as amb:
        resolve_release_ref("abab", lambda p: IDS[:2])
    assert amb.value.candidates == IDS[:2] and "2 candidates: abababababab, abcd00000000" in str(amb.value)
    with pytest.raises(NotFound, match="^no release matches ffff in store x$"):
        resolve_release_ref("ffff", _matches, where=" in store x")
    with pytest.raises(NotFound, match="^release .* not found$"):
        resolve_release_ref("ff" * 32, _matches, exists=lambda rid: False)
    with pytest.raises(BadInput, match="invalid release id 'ab'"):
        resolve_release_ref("ab", _matches)
