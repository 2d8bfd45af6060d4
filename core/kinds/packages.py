"""Package lists from lock files, for the ``source.packages`` field of a release (DESIGN §3).

A release records which package versions went into it so that ``diff`` can say "JSON 0.21.3 -> 0.21.4"
instead of listing thousands of changed files. The lists come from the builder's lock file:

- Julia: ``Manifest.toml`` in format 2.0 (``[[deps.Name]]`` tables), found in a depot under
  ``environments/v<X.Y>/``.
- Python: a pip requirements file where every requirement is pinned with ``==``.

Every function returns ``[{"name": str, "uuid": str, "version": str}]`` sorted by (name, uuid).
The shape is the same for both ecosystems so that consumers need no special case:
a Python package has ``uuid == ""``; a Julia stdlib without a version in the manifest has
``version == ""`` (always a string, never None or a missing key).
"""

from __future__ import annotations

import re
import tomllib
import uuid as uuidlib
from pathlib import Path
from typing import Any

from core.errors import BadInput

Package = dict[str, str]

_ENV_DIR_RE = re.compile(r"^v(\d+(?:\.\d+)*)$")


def _sorted(packages: list[Package]) -> list[Package]:
    return sorted(packages, key=lambda p: (p["name"], p["uuid"], p["version"]))


# --- Julia ---------------------------------------------------------------------------------------


def julia_manifest_packages(text: str) -> list[Package]:
    """Parse a Julia ``Manifest.toml`` (format 2.x) into a sorted package list.

    Stdlibs carry no ``version`` in older manifests; they get ``version == ""``. A package name that
    appears under several uuids (possible in Julia) yields one entry per uuid. Manifest format 1
    (top-level ``[[Name]]`` arrays, Julia < 1.7) is refused: its keys cannot be told apart from
    future top-level fields reliably, and re-resolving with a current Julia rewrites it as 2.0.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"Manifest.toml is not valid TOML: {exc}") from None
    fmt = data.get("manifest_format")
    if fmt is None:
        if any(isinstance(v, list) for v in data.values()):
            raise BadInput(
                "Manifest.toml is in format 1 (top-level [[Name]] tables); "
                'resolve it with Julia >= 1.7 to get manifest_format = "2.0"'
            )
        raise BadInput("Manifest.toml has no manifest_format field")
    if not isinstance(fmt, str) or not re.fullmatch(r"2\.\d+", fmt):
        raise BadInput(f'Manifest.toml has unsupported manifest_format {fmt!r} (expected "2.x")')
    deps = data.get("deps", {})
    if not isinstance(deps, dict):
        raise BadInput("Manifest.toml: 'deps' must be a table of [[deps.Name]] entries")
    packages: list[Package] = []
    for name, entries in deps.items():
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise BadInput(f"Manifest.toml: deps.{name} must be an array of tables ([[deps.{name}]])")
        for entry in entries:
            packages.append(_julia_entry(name, entry))
    return _sorted(packages)


def _julia_entry(name: str, entry: dict[str, Any]) -> Package:
    uid = entry.get("uuid")
    if not isinstance(uid, str):
        raise BadInput(f"Manifest.toml: deps.{name} has no uuid string")
    try:
        uidnorm = str(uuidlib.UUID(uid))
    except ValueError:
        raise BadInput(f"Manifest.toml: deps.{name} has a malformed uuid {uid!r}") from None
    version = entry.get("version", "")
    if not isinstance(version, str):
        raise BadInput(f"Manifest.toml: deps.{name} has a non-string version {version!r}")
    return {"name": name, "uuid": uidnorm, "version": version}


def _version_key(dirname: str) -> tuple[int, ...] | None:
    m = _ENV_DIR_RE.match(dirname)
    return tuple(int(part) for part in m.group(1).split(".")) if m else None


def find_julia_environment(root: Path) -> Path | None:
    """The ``environments/v<X.Y>/Manifest.toml`` of a depot tree; the highest version if several.

    Versions compare numerically (v1.10 > v1.9). Directories not named ``v<digits>[.<digits>…]``
    are ignored. Returns None when the depot has no such manifest.
    """
    envs = Path(root) / "environments"
    best: tuple[tuple[int, ...], Path] | None = None
    if not envs.is_dir():
        return None
    for child in envs.iterdir():
        key = _version_key(child.name)
        manifest = child / "Manifest.toml"
        if key is None or not manifest.is_file():
            continue
        if best is None or key > best[0]:
            best = (key, manifest)
    return best[1] if best else None


# --- Python --------------------------------------------------------------------------------------

_REQ_RE = re.compile(
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)"
    r"\s*(?:\[[A-Za-z0-9._,\s-]*\])?"
    r"\s*==\s*(?P<version>[A-Za-z0-9][A-Za-z0-9.+!_-]*)$"
)
# Options that only steer where pip looks: harmless for a package list.
_IGNORED_OPTIONS = (
    "-i",
    "--index-url",
    "--extra-index-url",
    "--no-index",
    "-f",
    "--find-links",
    "--trusted-host",
    "--pre",
    "--prefer-binary",
    "--only-binary",
    "--no-binary",
    "--require-hashes",
    "--use-feature",
)
# Options that pull in packages from elsewhere: the list would silently be incomplete.
_REFUSED_OPTIONS = ("-r", "--requirement", "-c", "--constraint", "-e", "--editable")


def normalize_name(name: str) -> str:
    """PEP 503 normalized project name: lower case, runs of ``-_.`` become one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each logical line: comments stripped, ``\\`` continuations joined."""
    out: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            out.append((start, line))
    if pending.strip():
        out.append((start, pending.strip()))
    return out


def _option_name(line: str) -> str:
    return re.split(r"[\s=]", line, maxsplit=1)[0]


def requirements_packages(text: str) -> list[Package]:
    """Parse a pip requirements file where every requirement is pinned with ``name==version``.

    Ignored: blank lines, comments, index options (``--find-links``, ``--no-index``, ``-i`` …),
    per-requirement ``--hash=`` options, extras (``pkg[extra]==1``) and environment markers
    (``; python_version < "3.12"``). Refused with BadInput naming the line: a requirement without an
    exact ``==`` pin (ranges, wildcards, URLs), ``-r``/``-c``/``-e`` (the list would be incomplete),
    unknown options, and one project pinned to two different versions. Names are PEP 503 normalized.
    """
    found: dict[str, Package] = {}
    for number, line in _logical_lines(text):
        if line.startswith("-"):
            option = _option_name(line)
            if option in _IGNORED_OPTIONS:
                continue
            if option in _REFUSED_OPTIONS:
                raise BadInput(
                    f"requirements line {number}: {option} is not supported (list every package pinned with ==): {line}"
                )
            raise BadInput(f"requirements line {number}: unknown option {option}")
        requirement = re.sub(r"\s--hash[=\s]\S+", "", " " + line).strip()
        requirement = requirement.split(";", 1)[0].strip()
        m = _REQ_RE.match(requirement)
        if not m:
            raise BadInput(f"requirements line {number}: not pinned as name==version: {line}")
        name, version = normalize_name(m.group("name")), m.group("version")
        if name in found and found[name]["version"] != version:
            raise BadInput(f"requirements line {number}: {name} pinned twice ({found[name]['version']} and {version})")
        found[name] = {"name": name, "uuid": "", "version": version}
    return _sorted(list(found.values()))
