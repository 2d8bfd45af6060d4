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
import shutil
import sys
from pathlib import Path
from typing import Any

from core.arch import compiler_flags
from core.build.builders.base import Builder, BuildOutput, BuildTarget, prepare_out_dir, register
from core.build.run import Runner
from core.errors import BadInput
from core.kinds import kind_for
from core.kinds.python import LIB, top_level_modules

PYTHON = kind_for("python")
_VERSION_CODE = "import sys, pip; print(sys.version.split()[0], pip.__version__)"


@register
class PythonBuilder(Builder):
    """pip-installed tree per CPU target (see module docstring)."""

    name = "python"
    options = {"find_links": list, "no_index": bool, "python": str, "no_build_isolation": bool}

    def validate_source(self, source: Path, options: dict[str, Any]) -> None:
        self.check_options(options)
        PYTHON.validate_spec(Path(source))
        if not all(isinstance(x, str) and x for x in options.get("find_links", [])):
            raise BadInput("python builder: find_links must be a list of paths or URLs")
        python = options.get("python", sys.executable)
        if not (os.path.isfile(python) and os.access(python, os.X_OK)) and not shutil.which(python):
            raise BadInput(f"python executable {python!r} not found")

    def build(self, source: Path, target: BuildTarget, runner: Runner, options: dict[str, Any]) -> BuildOutput:
        source = Path(source).resolve()
        self.validate_source(source, options)
        python = options.get("python", sys.executable)
        prepare_out_dir(target)
        lib = Path(target.out_dir).resolve() / LIB
        lib.mkdir(parents=True)
        work = Path(target.work_dir).resolve()

        cflags = f"{compiler_flags(target.arch)} -O2"
        env = PYTHON.build_env(os.environ)
        # pip's own temp dirs under work_dir: nothing of one target's build leaks into another's.
        tmp = work / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env.update(
            {
                "CFLAGS": cflags,
                "CXXFLAGS": cflags,
                "TMPDIR": str(tmp),
                "PIP_NO_INPUT": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )

        versions = runner.run(
            [python, "-c", _VERSION_CODE], arch=target.arch, env=env, capture=True, label="python"
        ).split()
        if len(versions) < 2:
            raise BadInput(f"{python} cannot run pip")
        py_version, pip_version = versions[-2], versions[-1]

        argv = [
            python,
            "-m",
            "pip",
            "install",
            "--target",
            str(lib),
            "--no-cache-dir",
            "--no-compile",
            "--disable-pip-version-check",
            "--no-input",
            "--no-warn-script-location",
        ]
        if options.get("no_index"):
            argv.append("--no-index")
        for link in options.get("find_links", []):
            # pip runs in the work dir: a relative local path means relative to where the build began.
            argv += ["--find-links", link if "://" in link else os.path.abspath(link)]
        if options.get("no_build_isolation"):
            argv.append("--no-build-isolation")
        argv += ["-r", str(source)]
        runner.run(argv, arch=target.arch, env=env, cwd=work, label="pip")
        runner.run(
            [python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", "-s", str(lib), str(lib)],
            arch=target.arch,
            env=env,
            cwd=work,
            label="compileall",
        )

        smoke = PYTHON.default_smoke(top_level_modules(lib))
        return BuildOutput(
            builder={
                "kind": "python",
                "tool_version": f"python {py_version}, pip {pip_version}",
                "python_version": ".".join(py_version.split(".")[:2]),
                "cpu_target": PYTHON.build_target(target.arch),
                "cflags": cflags,
            },
            packages=PYTHON.spec_packages(source),
            smoke=self.smoke(smoke, options),
            cpu_target=PYTHON.build_target(target.arch),
        )
