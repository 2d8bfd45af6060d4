"""A channel pointer rewritten within one second still changes its HTTP validators.

nginx derives ``ETag`` and ``Last-Modified`` from the file's whole-second mtime and its size; a
same-size pointer rewritten in the same second would revalidate as "not modified" in every cache
in front of the store (a rollback hidden behind Squid). ``LocalStore.compare_and_swap`` moves the
mtime on to the next second.
"""

from __future__ import annotations

from pathlib import Path

from core.store.local import LocalStore


def test_a_rewrite_in_the_same_second_moves_the_mtime_on(tmp_path: Path) -> None:
    store = LocalStore.create(tmp_path / "store")
    store.compare_and_swap("channels/production.json", None, b"a" * 100)
    path = tmp_path / "store" / "channels" / "production.json"
    seconds = [int(path.stat().st_mtime)]
    for version in range(3):  # all in well under a second
        store.compare_and_swap("channels/production.json", path.read_bytes(), bytes([98 + version]) * 100)
        seconds.append(int(path.stat().st_mtime))
    assert seconds == sorted(set(seconds)), seconds  # strictly increasing whole seconds
    assert path.read_bytes() == b"d" * 100
