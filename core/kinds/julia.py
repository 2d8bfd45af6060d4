"""Julia depots: Manifest.toml, the depot layout, ``JULIA_CPU_TARGET``, node variables, smoke hooks.

Layout of a delivered depot (the only entry a build puts in ``JULIA_DEPOT_PATH``)::

    environments/v<X.Y>/{Project,Manifest}.toml   the environment (the node's JULIA_PROJECT)
    compiled/v<X.Y>/<Name>/*.ji                   precompile caches, one directory per package
    packages/, artifacts/, registries/            what Pkg.instantiate fetched

A tree is a Julia depot when it has ``environments/v<X.Y>/Manifest.toml`` (`find_julia_environment`).

Node variables (`Julia.node_env`): ``JULIA_DEPOT_PATH=<writable>:<image>:`` (the node's writable
layer first, for new compile caches, logs and registries; the delivered depot read-only second; the
trailing colon keeps Julia's bundled stdlib depots after them), ``JULIA_PROJECT`` the image's newest
``environments/v*`` with a Project.toml, ``JULIA_PKG_OFFLINE=true``, ``JULIA_CPU_TARGET`` the image's
CPU target.

Smoke tests run with ``JULIA_DEBUG=loading``: a ``Rejecting cache file`` line names a package whose
cache was built for another CPU or Julia (it would be recompiled on every node start). The warm run
loads `JULIA_HOOK` with ``-L``; it writes ``Base.PkgId`` name, uuid and ``Base.pathof`` of every
loaded module, and the cache each package came from is read from the ``Loading (object) cache file
<path> for <Name> [<uuid>]`` debug lines and hashed. The cold baseline runs with
``--compiled-modules=no``. The debug message texts are Julia-internal (Julia 1.10's ``loading.jl``)
and may change between Julia versions; the tests use a stand-in ``julia`` that prints that format.
"""

from __future__ import annotations

import os
import re
import shutil
import tomllib
import uuid as uuidlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from core.errors import BadInput, CheckFailed
from core.kinds.base import Kind, Package, TreeSource, file_digest, fingerprint_of, sorted_packages

ENVIRONMENTS = "environments"
COMPILED = "compiled"
PROJECT = "Project.toml"
MANIFEST = "Manifest.toml"

#: What the build runs in the fresh depot, with automatic precompilation off.
PRECOMPILE_CODE = "using Pkg; Pkg.instantiate(); Pkg.precompile(strict=true)"
#: Environment files copied along with the project when present (preferences change compiled code).
EXTRA_ENV_FILES = ("LocalPreferences.toml", "JuliaLocalPreferences.toml")
#: The operator's settings that would make a build load or write anything outside the fresh depot.
#: Others (JULIA_NUM_THREADS, JULIA_SSL_CA_ROOTS_PATH, proxies, JULIA_PKG_SERVER) pass through.
OVERRIDDEN_ENV = frozenset(
    {
        "JULIA_DEPOT_PATH",
        "JULIA_LOAD_PATH",
        "JULIA_PROJECT",
        "JULIA_CPU_TARGET",
        "JULIA_BINDIR",
        "JULIA_PKG_PRECOMPILE_AUTO",
        "JULIA_PKG_OFFLINE",
        "JULIA_PKG_DEVDIR",
        "JULIA_PKGDIR",
    }
)

_ENV_DIR_RE = re.compile(r"^v(\d+(?:\.\d+)*)$")
_REJECT_RE = re.compile(r"Rejecting cache file (\S+)(?:\s+for\s+([^\s\[]+)(?:\s+\[([0-9a-f-]{36})\])?)?")
_LOADING_RE = re.compile(r"Loading (?:object )?cache file (\S+) for ([^\s\[]+)(?:\s+\[([0-9a-f-]{36})\])?")
_DEBUG_PREFIXES = ("┌ Debug:", "│ ", "└ @")

JULIA_HOOK = """\
atexit() do
    path = get(ENV, "DEPOT_SMOKE_FINGERPRINT", "")
    isempty(path) && return
    open(path, "w") do io
        for m in Base.loaded_modules_array()
            id = Base.PkgId(m)
            src = Base.pathof(m)
            println(io, id.name, '\\t', id.uuid === nothing ? "" : string(id.uuid), '\\t',
                    src === nothing ? "" : src)
        end
    end
end
"""


# --- Manifest.toml -------------------------------------------------------------------------------


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
            packages.append(_manifest_entry(name, entry))
    return sorted_packages(packages)


def _manifest_entry(name: str, entry: dict[str, Any]) -> Package:
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


def read_toml(path: Path) -> dict[str, Any]:
    """A spec's TOML file; BadInput if it is missing or not TOML."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path.name} is not valid TOML: {exc}") from None


def direct_deps(project_dir: Path) -> list[str]:
    """Names in Project.toml ``[deps]``, sorted."""
    deps = read_toml(project_dir / PROJECT).get("deps", {})
    if not isinstance(deps, dict):
        raise BadInput('Project.toml: [deps] must be a table of Name = "uuid"')
    return sorted(deps)


def compiled_packages(project_dir: Path) -> list[str]:
    """Manifest packages that get a precompile cache in the depot: all but the stdlibs.

    A stdlib entry has neither ``git-tree-sha1`` (registry or git packages) nor ``path`` (developed
    packages). ``version`` alone does not tell: some stdlibs (``OpenBLAS_jll``) carry one.
    """
    deps = read_toml(project_dir / MANIFEST).get("deps", {})
    names = set()
    for name, entries in deps.items() if isinstance(deps, dict) else ():
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, dict) and ("git-tree-sha1" in entry or "path" in entry):
                names.add(name)
    return sorted(names)


# --- depot layout --------------------------------------------------------------------------------


def environment_dir(depot: Path, short_version: str) -> Path:
    """``<depot>/environments/v<X.Y>``: where the project goes for Julia ``X.Y``."""
    return Path(depot) / ENVIRONMENTS / f"v{short_version}"


def compiled_dir(depot: Path, short_version: str) -> Path:
    """``<depot>/compiled/v<X.Y>``: the precompile caches of Julia ``X.Y``."""
    return Path(depot) / COMPILED / f"v{short_version}"


def _version_key(dirname: str) -> tuple[int, ...] | None:
    m = _ENV_DIR_RE.match(dirname)
    return tuple(int(part) for part in m.group(1).split(".")) if m else None


def newest_environment(root: Path, holding: str = MANIFEST) -> Path | None:
    """The newest ``environments/v<X.Y>`` directory of a depot that holds the file ``holding``.

    Versions compare numerically (v1.10 > v1.9). Directories not named ``v<digits>[.<digits>…]``
    are ignored. None when the depot has no such directory.
    """
    envs = Path(root) / ENVIRONMENTS
    best: tuple[tuple[int, ...], Path] | None = None
    if not envs.is_dir():
        return None
    for child in envs.iterdir():
        key = _version_key(child.name)
        if key is None or not (child / holding).is_file():
            continue
        if best is None or key > best[0]:
            best = (key, child)
    return best[1] if best else None


def find_julia_environment(root: Path) -> Path | None:
    """The ``environments/v<X.Y>/Manifest.toml`` of a depot tree; the highest version if several."""
    env = newest_environment(root, MANIFEST)
    return env / MANIFEST if env else None


# --- the julia executable ------------------------------------------------------------------------


def julia_executable(explicit: str | None = None) -> str:
    """The julia to use: ``explicit`` (the builder's option), else ``$JULIA``, else ``julia`` on PATH."""
    candidate = explicit or os.environ.get("JULIA") or "julia"
    found = shutil.which(candidate)
    if not found:
        raise BadInput(f"julia executable {candidate!r} not found (set option 'julia' or $JULIA)")
    return found


def parse_julia_version(text: str) -> tuple[str, str]:
    """(full version, "major.minor") from ``julia --version`` output ("julia version 1.10.4")."""
    m = re.search(r"julia version (\d+)\.(\d+)\.(\d+\S*)", text)
    if not m:
        raise CheckFailed(f"cannot read the Julia version from {text.strip()!r}")
    return f"{m.group(1)}.{m.group(2)}.{m.group(3)}", f"{m.group(1)}.{m.group(2)}"


# --- JULIA_CPU_TARGET ----------------------------------------------------------------------------

_JULIA_GENERIC = {
    "x86_64": "generic",
    "x86_64_v2": "x86-64-v2",
    "x86_64_v3": "x86-64-v3",
    "x86_64_v4": "x86-64-v4",
    "aarch64": "generic",
}

#: Multi-targets of Julia's official binaries: a generic base plus cloned tuned targets.
_JULIA_OFFICIAL_MULTI = {
    "x86_64": "generic;sandybridge,-xsaveopt,clone_all;haswell,-rdrnd,base(1)",
    "aarch64": ("generic;cortex-a57;thunderx2t99;carmel,clone_all;apple-m1,base(3);neoverse-512tvb,base(3)"),
}


def julia_cpu_target(arch: str) -> str:
    """The ``JULIA_CPU_TARGET`` for an image built for archspec micro-architecture ``arch``.

    Mapping:

    * ``x86_64`` -> ``generic``; ``x86_64_v2``/``v3``/``v4`` -> ``x86-64-v2``/``-v3``/``-v4``;
    * ``aarch64`` -> ``generic``;
    * any specific micro-architecture -> its LLVM CPU name (``core.arch.llvm_cpu_name``, from
      archspec's clang flag table, newest clang entry first): ``haswell`` -> ``haswell``,
      ``zen3`` -> ``znver3``, ``zen4`` -> ``znver4``, ``skylake_avx512`` -> ``skylake-avx512``,
      ``icelake`` -> ``icelake-client`` (archspec's name for the whole Ice Lake line),
      ``neoverse_v1`` -> ``neoverse-v1``; a ``-mcpu=`` value wins over ``-march=``, so generic
      aarch64 levels give ISA names (``armv8.2a`` -> ``armv8.2-a``);
    * ``generic`` when archspec has no clang data for ``arch``.
    """
    from core.arch import check_microarch, llvm_cpu_name  # archspec: not on `node env`'s start-up

    check_microarch(arch)
    if arch in _JULIA_GENERIC:
        return _JULIA_GENERIC[arch]
    return llvm_cpu_name(arch) or "generic"


def julia_multi_target(arch: str) -> str:
    """A multi-target ``JULIA_CPU_TARGET`` for ``arch``, in the style of Julia's official builds.

    * ``x86_64`` -> Julia's official x86_64 string
      ``generic;sandybridge,-xsaveopt,clone_all;haswell,-rdrnd,base(1)``;
    * ``aarch64`` -> Julia's official aarch64 string
      ``generic;cortex-a57;thunderx2t99;carmel,clone_all;apple-m1,base(3);neoverse-512tvb,base(3)``;
    * anything else -> ``generic;<cpu>,clone_all`` where ``<cpu>`` is ``julia_cpu_target(arch)``:
      a generic base target (Julia wants the base first) plus a full clone tuned for the image's
      CPU, so code still loads (slower) on a CPU that turns out older than expected;
    * ``generic`` alone if ``julia_cpu_target`` is ``generic``.
    """
    from core.arch import check_microarch

    check_microarch(arch)
    if arch in _JULIA_OFFICIAL_MULTI:
        return _JULIA_OFFICIAL_MULTI[arch]
    cpu = julia_cpu_target(arch)
    return "generic" if cpu == "generic" else f"generic;{cpu},clone_all"


# --- smoke output --------------------------------------------------------------------------------


def rejected_caches(output: str) -> list[dict]:
    """Every ``Rejecting cache file`` line of Julia's loading debug output, as {package, uuid, cache_file}."""
    out, seen = [], set()
    for m in _REJECT_RE.finditer(output):
        path, name, uuid = m.group(1).rstrip(".,;:"), m.group(2), m.group(3)
        if not name:  # messages without "for <Name>": the package is the cache's directory
            name = Path(path).parent.name
        key = (name, path)
        if key not in seen:
            seen.add(key)
            out.append({"package": name, "uuid": uuid or "", "cache_file": path})
    return out


def julia_fingerprint(path: Path, output: str) -> dict | None:
    """Modules the hook wrote to ``path`` (name, uuid) with the digest of the cache each came from."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    caches = {}
    for m in _LOADING_RE.finditer(output):
        caches[(m.group(2), m.group(3) or "")] = m.group(1)
    modules = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        name, uuid = parts[0], parts[1]
        cache = caches.get((name, uuid)) or caches.get((name, ""))
        modules.append([name, uuid, file_digest(cache) if cache else None])
    return fingerprint_of(modules)


# --- the kind ------------------------------------------------------------------------------------


class Julia(Kind):
    """Precompiled Julia depots (see the module docstring)."""

    name: ClassVar[str] = "julia"
    label: ClassVar[str] = "Julia"

    def detect(self, tree: Path) -> bool:
        return find_julia_environment(tree) is not None

    def tree_source(self, tree: Path) -> TreeSource | None:
        manifest = find_julia_environment(tree)
        if manifest is None:
            return None
        env = manifest.parent
        return TreeSource(
            packages=julia_manifest_packages(manifest.read_text("utf-8")),
            files={n: env / n for n in (PROJECT, MANIFEST) if (env / n).exists()},
            environment=str(env.relative_to(tree)),
        )

    def validate_spec(self, source: Path) -> None:
        source = Path(source)
        if not source.is_dir():
            raise BadInput(f"julia source {source} must be a directory with Project.toml and Manifest.toml")
        for name in (PROJECT, MANIFEST):
            if not (source / name).is_file():
                raise BadInput(f"julia source {source} has no {name}")
        deps = direct_deps(source)
        manifest_text = (source / MANIFEST).read_text(encoding="utf-8", errors="replace")
        in_manifest = {p["name"] for p in julia_manifest_packages(manifest_text)}
        missing = [d for d in deps if d not in in_manifest]
        if missing:
            raise BadInput(
                f"Manifest.toml lacks Project.toml deps {', '.join(missing)} (run Pkg.resolve() and commit the Manifest)"
            )

    def spec_files(self, source: Path) -> dict[str, Path]:
        files = {PROJECT: source / PROJECT, MANIFEST: source / MANIFEST}
        files.update({n: source / n for n in EXTRA_ENV_FILES if (source / n).is_file()})
        return files

    def spec_packages(self, source: Path) -> list[Package]:
        return julia_manifest_packages((Path(source) / MANIFEST).read_text(encoding="utf-8"))

    def build_env(self, base: Mapping[str, str]) -> dict[str, str]:
        return {k: v for k, v in base.items() if k not in OVERRIDDEN_ENV}

    def default_smoke(self, names: list[str]) -> list[str]:
        return ["julia", "--startup-file=no", "-e", f"using {', '.join(names)}" if names else "nothing"]

    def build_target(self, arch: str) -> str:
        return julia_cpu_target(arch)

    def image_target(self, arch: str) -> str:
        return julia_cpu_target(arch)

    def node_env(self, image: Path, *, arch: str, cpu_target: str, writable: Path) -> dict[str, str]:
        writable.mkdir(parents=True, exist_ok=True)
        env = {"JULIA_DEPOT_PATH": f"{writable}:{image}:"}
        project = newest_environment(image, PROJECT)
        if project is not None:
            env["JULIA_PROJECT"] = str(project)
        env["JULIA_PKG_OFFLINE"] = "true"
        if not cpu_target:
            try:
                cpu_target = julia_cpu_target(arch)
            except BadInput:
                cpu_target = "generic"
        env["JULIA_CPU_TARGET"] = cpu_target
        return env

    def runs(self, cmd: list[str]) -> bool:
        return Path(cmd[0]).name.startswith("julia")

    def warm_up(self, cmd: list[str], env: dict[str, str], scratch: Path) -> list[str]:
        env["JULIA_DEBUG"] = "loading"
        if not self.runs(cmd):
            return cmd
        hook = scratch / "fingerprint_hook.jl"
        hook.write_text(JULIA_HOOK)
        return [cmd[0], "-L", str(hook), *cmd[1:]]

    def cold_start(self, cmd: list[str], env: dict[str, str], scratch: Path) -> list[str]:
        return [cmd[0], "--compiled-modules=no", *cmd[1:]] if self.runs(cmd) else cmd

    def read_fingerprint(self, path: Path, output: str) -> dict | None:
        return julia_fingerprint(path, output)

    def rejected_caches(self, output: str) -> list[dict]:
        return rejected_caches(output)

    def is_noise(self, line: str) -> bool:
        return line.startswith(_DEBUG_PREFIXES) or bool(_LOADING_RE.search(line))
