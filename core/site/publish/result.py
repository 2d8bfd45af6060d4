"""What a publish reports: the result document and the progress callback's shape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: ``progress(phase, done, total, bytes)``: ``phase`` is ``"hash"`` or ``"write"``.
Progress = Callable[[str, int, int, int], None]


@dataclass
class PublishResult:
    """What a publish did, for the operator and for scripts."""

    release_id: str = ""
    name: str = ""
    label: str = ""
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0
    new_objects: int = 0
    new_bytes: int = 0
    stored_bytes: int = 0
    reused_objects: int = 0
    reused_bytes: int = 0
    hashed_files: int = 0
    cached_files: int = 0
    reused_packs: int = 0  # images whose packs an earlier release of the same name already had
    seconds: float = 0.0
    already_published: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)
