"""Package lists from lock files, for the ``source.packages`` field of a release (DESIGN §3).

A release records which package versions went into it so that ``diff`` can say "JSON 0.21.3 -> 0.21.4"
instead of listing thousands of changed files. The lists come from the builder's lock file:

- Julia: ``Manifest.toml`` in format 2.0 (``[[deps.Name]]`` tables), found in a depot under
  ``environments/v<X.Y>/`` (`core.kinds.julia`).
- Python: a pip requirements file where every requirement is pinned with ``==`` (`core.kinds.python`).

Every function returns ``[{"name": str, "uuid": str, "version": str}]`` sorted by (name, uuid).
The shape is the same for both ecosystems so that consumers need no special case:
a Python package has ``uuid == ""``; a Julia stdlib without a version in the manifest has
``version == ""`` (always a string, never None or a missing key).

The parsers live with their kind; this module is the one place that names them together.
"""

from __future__ import annotations

from core.kinds.base import Package
from core.kinds.julia import find_julia_environment, julia_manifest_packages
from core.kinds.python import normalize_name, requirements_packages

__all__ = ["Package", "find_julia_environment", "julia_manifest_packages", "normalize_name", "requirements_packages"]
