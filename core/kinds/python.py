"""Python environments: pinned requirements, the ``lib/python`` tree, node variables, smoke hooks.

An image is a ``lib/python`` directory that pip installed into (``pip install --target``), with
``.pyc`` files compiled in ``unchecked-hash`` mode so they stay valid read-only and relocated. A
tree is a Python environment when it has ``lib/python`` (`Python.detect`).

Node variables (`Python.node_env`): ``PYTHONPATH=<image>/lib/python`` (replacing any inherited
value, so the result does not depend on the caller's shell) and ``PYTHONDONTWRITEBYTECODE=1``: the
image is read-only and its ``__pycache__`` holds the delivered bytecode (``PYTHONPYCACHEPREFIX``
would make Python ignore those delivered ``.pyc`` files).

Smoke tests: the warm run puts a directory with `PY_HOOK` as ``sitecustomize.py`` first on
``PYTHONPATH``; it registers an ``atexit`` hook that writes every ``sys.modules`` name with the
sha256 of the file it came from (``__spec__.origin``). A program that ends with ``os._exit``, runs
with ``-S``/``-I``, or a site whose own ``sitecustomize`` must run yields no fingerprint (``None``)
or shadows that file. The cold baseline runs with ``-B`` and ``PYTHONPYCACHEPREFIX`` set to an empty
directory, so no bytecode is found.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from core.errors import BadInput
from core.kinds.base import Kind, Package, sorted_packages

#: Where the packages of an image live, relative to the image.
LIB = Path("lib") / "python"

#: The operator's settings that would make pip install somewhere else or import other packages.
OVERRIDDEN_ENV = ("PYTHONPATH", "PIP_TARGET", "PIP_PREFIX", "PIP_USER", "PYTHONUSERBASE")

_PYTHON_RE = re.compile(r"^python(\d+(\.\d+)?)?$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

PY_HOOK = """\
import atexit, os, sys


def _depot_smoke_fingerprint():
    names = sorted(n for n in list(sys.modules) if n != "sitecustomize")
    import hashlib, json
    out = []
    for name in names:
        mod = sys.modules.get(name)
        spec = getattr(mod, "__spec__", None)
        origin = getattr(spec, "origin", None) or getattr(mod, "__file__", None)
        digest = None
        if isinstance(origin, str) and os.path.isfile(origin):
            with open(origin, "rb") as f:
                digest = "sha256:" + hashlib.sha256(f.read()).hexdigest()
        out.append([name, digest])
    with open(os.environ["DEPOT_SMOKE_FINGERPRINT"], "w") as f:
        json.dump(out, f)


if os.environ.get("DEPOT_SMOKE_FINGERPRINT"):
    atexit.register(_depot_smoke_fingerprint)
"""


# --- requirements files --------------------------------------------------------------------------

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
    return sorted_packages(list(found.values()))


# --- installed trees -----------------------------------------------------------------------------


def _dist_top_levels(dist_info: Path) -> set[str]:
    """Importable top-level names of one installed distribution (top_level.txt, else RECORD)."""
    top_level = dist_info / "top_level.txt"
    names: set[str] = set()
    if top_level.is_file():
        names = {line.strip() for line in top_level.read_text().splitlines() if line.strip()}
    elif (dist_info / "RECORD").is_file():
        for line in (dist_info / "RECORD").read_text().splitlines():
            path = line.split(",", 1)[0]
            first = path.split("/", 1)[0]
            if "/" in path:
                if not first.endswith((".dist-info", ".data")) and first not in ("..", "bin", "__pycache__"):
                    names.add(first)
            elif path.endswith(".py"):
                names.add(path[:-3])
            elif path.endswith(".so"):
                names.add(path.split(".", 1)[0])
    return {n for n in names if _IDENTIFIER.match(n) and not n.startswith("_")}


def top_level_modules(lib: Path) -> list[str]:
    """Sorted importable top-level modules of every distribution installed in ``lib``."""
    names: set[str] = set()
    for dist_info in lib.glob("*.dist-info"):
        names |= {n for n in _dist_top_levels(dist_info) if (lib / n).exists() or any(lib.glob(f"{n}.*"))}
    return sorted(names)


# --- the kind ------------------------------------------------------------------------------------


class Python(Kind):
    """pip-installed ``lib/python`` trees (see the module docstring)."""

    name: ClassVar[str] = "python"
    label: ClassVar[str] = "Python"

    def detect(self, tree: Path) -> bool:
        return (Path(tree) / LIB).is_dir()

    def validate_spec(self, source: Path) -> None:
        source = Path(source)
        if not source.is_file():
            raise BadInput(f"python source {source} must be a requirements file")
        try:
            text = source.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise BadInput(f"{source} is not UTF-8 text") from None
        if not requirements_packages(text):
            raise BadInput(f"{source} lists no packages")

    def spec_files(self, source: Path) -> dict[str, Path]:
        return {source.name: source} if source.is_file() else {}

    def spec_packages(self, source: Path) -> list[Package]:
        return requirements_packages(Path(source).read_text(encoding="utf-8"))

    def build_env(self, base: Mapping[str, str]) -> dict[str, str]:
        return {k: v for k, v in base.items() if k not in OVERRIDDEN_ENV}

    def default_smoke(self, names: list[str]) -> list[str]:
        return ["python3", "-c", f"import {', '.join(names)}" if names else "pass"]

    def build_target(self, arch: str) -> str:
        return arch

    def node_env(self, image: Path, *, arch: str, cpu_target: str, writable: Path) -> dict[str, str]:
        return {"PYTHONPATH": str(image / LIB), "PYTHONDONTWRITEBYTECODE": "1"}

    def runs(self, cmd: list[str]) -> bool:
        return bool(_PYTHON_RE.match(Path(cmd[0]).name))

    def warm_up(self, cmd: list[str], env: dict[str, str], scratch: Path) -> list[str]:
        hookdir = scratch / "pyhook"
        hookdir.mkdir()
        (hookdir / "sitecustomize.py").write_text(PY_HOOK)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(hookdir), env.get("PYTHONPATH", "")) if p)
        return cmd

    def cold_start(self, cmd: list[str], env: dict[str, str], scratch: Path) -> list[str]:
        empty = scratch / "empty-pycache"
        empty.mkdir()
        env["PYTHONPYCACHEPREFIX"] = str(empty)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return [cmd[0], "-B", *cmd[1:]] if self.runs(cmd) else cmd
