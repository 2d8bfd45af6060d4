"""Python builder: a requirements file pinned with ``==`` -> one ``lib/python`` tree per CPU target.

For each target::

    python -m pip install --target <out>/lib/python --no-cache-dir --no-compile ... -r requirements

with ``CFLAGS``/``CXXFLAGS`` set from ``core.arch.compiler_flags(arch)`` plus ``-O2``, so packages that
come as sdists compile their extensions for that target. pip's wheel cache is off (``--no-cache-dir``):
otherwise the wheel built for the first target would be reused for the next one with the wrong flags.
Then ``compileall --invalidation-mode unchecked-hash`` writes .pyc files that stay valid in a read-only,
relocated tree (no mtime checks, PEP 552), with source paths stored relative to ``lib/python`` so pure
Python files compile to the same bytes for every target and the store keeps them once.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from core.build.run import Runner
from core.errors import BadInput

from core.build.builders.base import BuildOutput, Builder, BuildTarget, prepare_out_dir, register

_VERSION_CODE = "import sys, pip; print(sys.version.split()[0], pip.__version__)"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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


@register
class PythonBuilder(Builder):
    """pip-installed tree per CPU target (see module docstring)."""

    name = "python"
    options = {"find_links": list, "no_index": bool, "python": str, "no_build_isolation": bool}

    def validate_source(self, source: Path, options: dict[str, Any]) -> None:
        from core.kinds.packages import requirements_packages

        self.check_options(options)
        source = Path(source)
        if not source.is_file():
            raise BadInput(f"python source {source} must be a requirements file")
        try:
            text = source.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise BadInput(f"{source} is not UTF-8 text") from None
        if not requirements_packages(text):
            raise BadInput(f"{source} lists no packages")
        if not all(isinstance(x, str) and x for x in options.get("find_links", [])):
            raise BadInput("python builder: find_links must be a list of paths or URLs")
        python = options.get("python", sys.executable)
        if not (os.path.isfile(python) and os.access(python, os.X_OK)) and not shutil.which(python):
            raise BadInput(f"python executable {python!r} not found")

    def build(self, source: Path, target: BuildTarget, runner: Runner,
              options: dict[str, Any]) -> BuildOutput:
        from core.arch import compiler_flags
        from core.kinds.packages import requirements_packages

        source = Path(source).resolve()
        self.validate_source(source, options)
        python = options.get("python", sys.executable)
        prepare_out_dir(target)
        lib = Path(target.out_dir).resolve() / "lib" / "python"
        lib.mkdir(parents=True)
        work = Path(target.work_dir).resolve()

        cflags = f"{compiler_flags(target.arch)} -O2"
        env = dict(os.environ)
        for var in ("PYTHONPATH", "PIP_TARGET", "PIP_PREFIX", "PIP_USER", "PYTHONUSERBASE"):
            env.pop(var, None)
        # pip's own temp dirs under work_dir: nothing of one target's build leaks into another's.
        tmp = work / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env.update({"CFLAGS": cflags, "CXXFLAGS": cflags, "TMPDIR": str(tmp),
                    "PIP_NO_INPUT": "1", "PYTHONDONTWRITEBYTECODE": "1"})

        versions = runner.run([python, "-c", _VERSION_CODE], arch=target.arch, env=env,
                              capture=True, label="python").split()
        if len(versions) < 2:
            raise BadInput(f"{python} cannot run pip")
        py_version, pip_version = versions[-2], versions[-1]

        argv = [python, "-m", "pip", "install", "--target", str(lib), "--no-cache-dir", "--no-compile",
                "--disable-pip-version-check", "--no-input", "--no-warn-script-location"]
        if options.get("no_index"):
            argv.append("--no-index")
        for link in options.get("find_links", []):
            # pip runs in the work dir: a relative local path means relative to where the build began.
            argv += ["--find-links", link if "://" in link else os.path.abspath(link)]
        if options.get("no_build_isolation"):
            argv.append("--no-build-isolation")
        argv += ["-r", str(source)]
        runner.run(argv, arch=target.arch, env=env, cwd=work, label="pip")
        runner.run([python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
                    "-s", str(lib), str(lib)], arch=target.arch, env=env, cwd=work, label="compileall")

        modules = top_level_modules(lib)
        smoke = ["python3", "-c", f"import {', '.join(modules)}" if modules else "pass"]
        return BuildOutput(
            builder={"kind": "python", "tool_version": f"python {py_version}, pip {pip_version}",
                     "python_version": ".".join(py_version.split(".")[:2]),
                     "cpu_target": target.arch, "cflags": cflags},
            packages=requirements_packages(source.read_text(encoding="utf-8")),
            smoke=self.smoke(smoke, options),
            cpu_target=target.arch,
        )

