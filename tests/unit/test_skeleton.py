"""``core.store.materialize.Skeleton``: files placed behind directories still being made (issue 17)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from core.store.materialize import ImagePlan, Skeleton, build


def plan_of(ndirs: int, files_per_dir: int) -> ImagePlan:
    plan = ImagePlan()
    for d in range(ndirs):
        plan.dirs.append(f"d{d}")
        for f in range(files_per_dir):
            plan.files.append((f"d{d}/f{f}", "00" * 32, False, 1))
            plan.dirs_before.append(len(plan.dirs))
            plan.nbytes += 1
    plan.links.append(("d0/link", "f0"))
    return plan


def test_build_places_every_file_behind_a_skeleton_made_on_another_thread(tmp_path: Path) -> None:
    plan = plan_of(300, 3)  # several Skeleton.STEP reports, and a last partial one
    skeleton = Skeleton(str(tmp_path), plan)
    placed: list[str] = []

    def place(path: str, h: str, x: bool, size: int) -> None:
        assert os.path.isdir(os.path.dirname(path)), path  # its directory exists when it is placed
        Path(path).write_bytes(b"x")
        placed.append(path)

    side = threading.Thread(target=skeleton.make)
    side.start()
    assert build(str(tmp_path), plan, place, dir_mode=0o755, skeleton=skeleton) == (900, 900)
    side.join()
    assert len(placed) == 900 and skeleton.made == 300
    assert os.readlink(tmp_path / "d0" / "link") == "f0"


def test_a_failed_skeleton_fails_the_build_with_its_error(tmp_path: Path) -> None:
    plan = plan_of(3, 1)
    (tmp_path / "d1").write_bytes(b"in the way")  # mkdir of d1 fails: FileExistsError
    skeleton = Skeleton(str(tmp_path), plan)
    with pytest.raises(FileExistsError):
        skeleton.make()
    placed: list[str] = []
    with pytest.raises(FileExistsError):
        build(str(tmp_path), plan, lambda p, *_: placed.append(p), dir_mode=0o755, skeleton=skeleton)
    assert placed == [f"{tmp_path}/d0/f0"]  # what the skeleton made before failing, and no more
