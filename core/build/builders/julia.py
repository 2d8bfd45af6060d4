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
import shutil
from pathlib import Path
from typing import Any

from core.build.builders.base import Builder, BuildOutput, BuildTarget, prepare_out_dir, register
from core.build.run import Runner
from core.errors import BadInput, CheckFailed
from core.kinds import kind_for
from core.kinds.julia import (
    PRECOMPILE_CODE,
    compiled_dir,
    compiled_packages,
    direct_deps,
    environment_dir,
    julia_executable,
    parse_julia_version,
)

JULIA = kind_for("julia")


@register
class JuliaBuilder(Builder):
    """Precompiled Julia depot per CPU target (see module docstring)."""

    name = "julia"
    options = {"julia": str, "cpu_target": str, "skip_compiled_check": list}

    def validate_source(self, source: Path, options: dict[str, Any]) -> None:
        self.check_options(options)
        JULIA.validate_spec(Path(source))
        if "cpu_target" in options and not options["cpu_target"].strip():
            raise BadInput("julia builder: option 'cpu_target' is empty")
        julia_executable(options.get("julia"))

    def source_files(self, source: Path, options: dict[str, Any]) -> dict[str, Path]:
        return JULIA.spec_files(source)

    def build(self, source: Path, target: BuildTarget, runner: Runner, options: dict[str, Any]) -> BuildOutput:
        source = Path(source)
        self.validate_source(source, options)
        julia = julia_executable(options.get("julia"))
        cpu_target = options.get("cpu_target") or JULIA.build_target(target.arch)
        prepare_out_dir(target)
        depot = Path(target.out_dir).resolve()

        env = JULIA.build_env(os.environ)
        version_out = runner.run([julia, "--version"], arch=target.arch, env=env, capture=True)
        full_version, short_version = parse_julia_version(version_out)

        env_dir = environment_dir(depot, short_version)
        env_dir.mkdir(parents=True)
        for name, path in self.source_files(source, options).items():
            shutil.copyfile(path, env_dir / name)

        env.update(
            {
                "JULIA_DEPOT_PATH": str(depot),
                "JULIA_PROJECT": str(env_dir),
                "JULIA_CPU_TARGET": cpu_target,
                "JULIA_PKG_PRECOMPILE_AUTO": "0",
            }
        )
        runner.run(
            [julia, "--startup-file=no", f"--project={env_dir}", "-e", PRECOMPILE_CODE],
            arch=target.arch,
            env=env,
            cwd=Path(target.work_dir),
        )

        skip = set(options.get("skip_compiled_check", []))
        compiled = compiled_dir(depot, short_version)
        missing = [n for n in compiled_packages(source) if n not in skip and not any((compiled / n).glob("*.ji"))]
        if missing:
            runner.log(target.arch, f"no precompile cache for: {', '.join(missing)}")
            raise CheckFailed(
                f"no precompile cache in compiled/v{short_version} for {', '.join(missing)} ({target.arch})"
            )
        # Build-host bookkeeping (absolute paths of the build env): useless on nodes, differs per target.
        shutil.rmtree(depot / "logs", ignore_errors=True)

        smoke = JULIA.default_smoke(direct_deps(source))
        return BuildOutput(
            builder={
                "kind": "julia",
                "tool_version": full_version,
                "julia_version": short_version,
                "cpu_target": cpu_target,
            },
            packages=JULIA.spec_packages(source),
            smoke=self.smoke(smoke, options),
            cpu_target=cpu_target,
        )
