"""Julia builder: a project (Project.toml + Manifest.toml) -> one precompiled depot per CPU target.

For each target the builder makes a fresh depot that is the *only* entry of ``JULIA_DEPOT_PATH``,
copies the environment to ``<depot>/environments/v<X.Y>/`` (the node points ``JULIA_PROJECT`` there),
and runs, with ``JULIA_CPU_TARGET`` set for the target arch and automatic precompilation off::

    julia --startup-file=no --project=<env> -e 'using Pkg; Pkg.instantiate(); Pkg.precompile(strict=true)'

``Pkg.instantiate`` downloads exactly what the Manifest pins into ``packages/`` and ``artifacts/``;
``Pkg.precompile(strict=true)`` writes the caches to ``compiled/v<X.Y>/<Name>/`` and fails on any
package that does not precompile. The builder then checks that every non-stdlib package of the
Manifest has at least one ``.ji`` there: a cache missing on the node means minutes of compilation
at first use, exactly what the depot exists to prevent.
"""
from __future__ import annotations

import os
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

from core.build.run import Runner
from core.errors import BadInput, CheckFailed

from core.build.builders.base import BuildOutput, Builder, BuildTarget, prepare_out_dir, register

PRECOMPILE_CODE = "using Pkg; Pkg.instantiate(); Pkg.precompile(strict=true)"
# Environment files copied along with the project when present (preferences change compiled code).
_EXTRA_ENV_FILES = ("LocalPreferences.toml", "JuliaLocalPreferences.toml")
# The operator's settings that would make the build load or write anything outside the fresh depot.
# Others (JULIA_NUM_THREADS, JULIA_SSL_CA_ROOTS_PATH, proxies, JULIA_PKG_SERVER) pass through.
_OVERRIDDEN_ENV = frozenset({
    "JULIA_DEPOT_PATH", "JULIA_LOAD_PATH", "JULIA_PROJECT", "JULIA_CPU_TARGET", "JULIA_BINDIR",
    "JULIA_PKG_PRECOMPILE_AUTO", "JULIA_PKG_OFFLINE", "JULIA_PKG_DEVDIR", "JULIA_PKGDIR"})


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path.name} is not valid TOML: {exc}") from None


def direct_deps(project_dir: Path) -> list[str]:
    """Names in Project.toml ``[deps]``, sorted."""
    deps = _read_toml(project_dir / "Project.toml").get("deps", {})
    if not isinstance(deps, dict):
        raise BadInput("Project.toml: [deps] must be a table of Name = \"uuid\"")
    return sorted(deps)


def compiled_packages(project_dir: Path) -> list[str]:
    """Manifest packages that get a precompile cache in the depot: all but the stdlibs.

    A stdlib entry has neither ``git-tree-sha1`` (registry or git packages) nor ``path`` (developed
    packages). ``version`` alone does not tell: some stdlibs (``OpenBLAS_jll``) carry one.
    """
    deps = _read_toml(project_dir / "Manifest.toml").get("deps", {})
    names = set()
    for name, entries in deps.items() if isinstance(deps, dict) else ():
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, dict) and ("git-tree-sha1" in entry or "path" in entry):
                names.add(name)
    return sorted(names)


def julia_executable(options: dict[str, Any]) -> str:
    """The julia to use: option ``julia``, else ``$JULIA``, else ``julia`` on PATH."""
    candidate = options.get("julia") or os.environ.get("JULIA") or "julia"
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


@register
class JuliaBuilder(Builder):
    """Precompiled Julia depot per CPU target (see module docstring)."""

    name = "julia"
    options = {"julia": str, "cpu_target": str, "skip_compiled_check": list}

    def validate_source(self, source: Path, options: dict[str, Any]) -> None:
        from core.kinds.packages import julia_manifest_packages

        self.check_options(options)
        source = Path(source)
        if not source.is_dir():
            raise BadInput(f"julia source {source} must be a directory with Project.toml and Manifest.toml")
        for name in ("Project.toml", "Manifest.toml"):
            if not (source / name).is_file():
                raise BadInput(f"julia source {source} has no {name}")
        deps = direct_deps(source)
        manifest_text = (source / "Manifest.toml").read_text(encoding="utf-8", errors="replace")
        in_manifest = {p["name"] for p in julia_manifest_packages(manifest_text)}
        missing = [d for d in deps if d not in in_manifest]
        if missing:
            raise BadInput(f"Manifest.toml lacks Project.toml deps {', '.join(missing)} "
                           "(run Pkg.resolve() and commit the Manifest)")
        if "cpu_target" in options and not options["cpu_target"].strip():
            raise BadInput("julia builder: option 'cpu_target' is empty")
        julia_executable(options)

    def source_files(self, source: Path, options: dict[str, Any]) -> dict[str, Path]:
        files = {"Project.toml": source / "Project.toml", "Manifest.toml": source / "Manifest.toml"}
        files.update({n: source / n for n in _EXTRA_ENV_FILES if (source / n).is_file()})
        return files

    def build(self, source: Path, target: BuildTarget, runner: Runner,
              options: dict[str, Any]) -> BuildOutput:
        from core.arch import julia_cpu_target
        from core.kinds.packages import julia_manifest_packages

        source = Path(source)
        self.validate_source(source, options)
        julia = julia_executable(options)
        cpu_target = options.get("cpu_target") or julia_cpu_target(target.arch)
        prepare_out_dir(target)
        depot = Path(target.out_dir).resolve()

        env = {k: v for k, v in os.environ.items() if k not in _OVERRIDDEN_ENV}
        version_out = runner.run([julia, "--version"], arch=target.arch, env=env, capture=True)
        full_version, short_version = parse_julia_version(version_out)

        env_dir = depot / "environments" / f"v{short_version}"
        env_dir.mkdir(parents=True)
        for name, path in self.source_files(source, options).items():
            shutil.copyfile(path, env_dir / name)

        env.update({
            "JULIA_DEPOT_PATH": str(depot),
            "JULIA_PROJECT": str(env_dir),
            "JULIA_CPU_TARGET": cpu_target,
            "JULIA_PKG_PRECOMPILE_AUTO": "0",
        })
        runner.run([julia, "--startup-file=no", f"--project={env_dir}", "-e", PRECOMPILE_CODE],
                   arch=target.arch, env=env, cwd=Path(target.work_dir))

        skip = set(options.get("skip_compiled_check", []))
        compiled = depot / "compiled" / f"v{short_version}"
        missing = [n for n in compiled_packages(source)
                   if n not in skip and not any((compiled / n).glob("*.ji"))]
        if missing:
            runner.log(target.arch, f"no precompile cache for: {', '.join(missing)}")
            raise CheckFailed(f"no precompile cache in compiled/v{short_version} for "
                              f"{', '.join(missing)} ({target.arch})")
        # Build-host bookkeeping (absolute paths of the build env): useless on nodes, differs per target.
        shutil.rmtree(depot / "logs", ignore_errors=True)

        deps = direct_deps(source)
        smoke = ["julia", "--startup-file=no", "-e", f"using {', '.join(deps)}" if deps else "nothing"]
        return BuildOutput(
            builder={"kind": "julia", "tool_version": full_version, "julia_version": short_version,
                     "cpu_target": cpu_target},
            packages=julia_manifest_packages((source / "Manifest.toml").read_text(encoding="utf-8")),
            smoke=self.smoke(smoke, options),
            cpu_target=cpu_target,
        )
