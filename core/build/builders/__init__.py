"""Builders: source spec + target micro-architecture -> depot directory (DESIGN §1).

Importing this package registers the built-in builders ``julia``, ``python`` and ``command``;
`get_builder(name)` returns one, `load_site_builders` adds a site's own from config.
"""

from __future__ import annotations

from core.build.builders import command, julia, python  # noqa: F401  (registration side effect)
from core.build.builders.base import (
    Builder,
    BuildOutput,
    BuildTarget,
    get_builder,
    known_builders,
    load_site_builders,
    register,
)

__all__ = ["BuildOutput", "Builder", "BuildTarget", "get_builder", "known_builders", "load_site_builders", "register"]
