"""Command-line arguments of a publish, parsed into what ``publish`` takes."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from core.errors import BadInput


def parse_image_args(values: list[str]) -> dict[str, Path]:
    """``["x86_64=/path", …]`` -> ``{"x86_64": Path}``; duplicates and bad syntax are refused."""
    out: dict[str, Path] = {}
    for v in values:
        arch, sep, path = v.partition("=")
        if not sep or not arch or not path:
            raise BadInput(f"--image expects ARCH=DIR, got {v!r}")
        if arch in out:
            raise BadInput(f"--image {arch} given twice")
        out[arch] = Path(path)
    return out


def parse_smoke(command: str | None, timeout_s: int = 600) -> dict[str, Any] | None:
    """A ``--smoke 'cmd args'`` option as a manifest smoke section."""
    if not command:
        return None
    return {"command": shlex.split(command), "timeout_s": timeout_s}
