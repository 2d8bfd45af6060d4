"""Command builder: a site's own script, run once per CPU target, fills the depot directory.

For sites whose software does not fit the Julia or pip builders (a Makefile, spack, a vendor
installer). The script gets its target in its environment and writes into ``$DEPOT_OUT``:

- ``DEPOT_OUT``: the (empty) image directory to fill; ``DEPOT_WORK``: scratch space;
- ``DEPOT_ARCH``: the archspec micro-architecture name (``x86_64_v3``);
- ``DEPOT_CFLAGS``: ``core.arch.compiler_flags(arch)`` (``-march=x86-64-v3 -mtune=generic``);
- ``JULIA_CPU_TARGET``: ``core.kinds.julia.julia_cpu_target(arch)`` or the ``cpu_target`` option.

The source is an executable script, or, with the ``command`` option, a shell command line run by
``/bin/sh -c`` in the source directory. A non-zero exit fails the target (CheckFailed; the output is
in the build log). Option ``layout`` (a kind, "julia" or "python", or "command") tells the node which
kind of environment to make for the image, when the script builds a Julia depot or a Python tree; the
image's ``cpu_target`` is then that kind's build target (``core.kinds``), else the arch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from core.arch import compiler_flags
from core.build.builders.base import Builder, BuildOutput, BuildTarget, prepare_out_dir, register
from core.build.run import Runner
from core.errors import BadInput
from core.kinds import get_kind, kind_for, known_kinds
from core.model.digest import hash_file

LAYOUTS = (*known_kinds(), "command")


@register
class CommandBuilder(Builder):
    """Site script per CPU target (see module docstring)."""

    name = "command"
    options = {"command": str, "cpu_target": str, "layout": str}

    def validate_source(self, source: Path, options: dict[str, Any]) -> None:
        self.check_options(options)
        source = Path(source)
        if options.get("layout", "command") not in LAYOUTS:
            raise BadInput(f"command builder: layout must be one of {', '.join(LAYOUTS)}")
        if "command" in options:
            if not options["command"].strip():
                raise BadInput("command builder: option 'command' is empty")
            if not source.is_dir():
                raise BadInput(f"command builder: with option 'command', source {source} must be a directory")
            return
        if not source.is_file():
            raise BadInput(f"build script {source} does not exist")
        if not os.access(source, os.X_OK):
            raise BadInput(f"build script {source} is not executable (chmod +x)")

    def build(self, source: Path, target: BuildTarget, runner: Runner, options: dict[str, Any]) -> BuildOutput:
        source = Path(source).resolve()
        self.validate_source(source, options)
        prepare_out_dir(target)
        out, work = Path(target.out_dir).resolve(), Path(target.work_dir).resolve()
        cflags = compiler_flags(target.arch)
        cpu_target = options.get("cpu_target") or kind_for("julia").build_target(target.arch)
        env = dict(os.environ)
        env.update(
            {
                "DEPOT_OUT": str(out),
                "DEPOT_WORK": str(work),
                "DEPOT_ARCH": target.arch,
                "DEPOT_CFLAGS": cflags,
                "JULIA_CPU_TARGET": cpu_target,
            }
        )
        if "command" in options:
            argv, cwd, what = ["/bin/sh", "-c", options["command"]], source, options["command"]
            label = "command"
            script_digest = None
        else:
            argv, cwd, what = [str(source)], source.parent, source.name
            label = source.name
            script_digest = hash_file(source)[0]
        runner.run(argv, arch=target.arch, env=env, cwd=cwd, label=label)

        builder: dict[str, Any] = {
            "kind": "command",
            "tool_version": what,
            "layout": options.get("layout", "command"),
            "cpu_target": cpu_target,
            "cflags": cflags,
        }
        if script_digest:
            builder["script_digest"] = script_digest
        # The image's cpu_target is what the node will see: the layout kind's (Julia's string for a
        # Julia depot), the option if given, else the arch.
        layout = get_kind(builder["layout"])
        if "cpu_target" in options:
            image_target = cpu_target
        else:
            image_target = layout.build_target(target.arch) if layout else target.arch
        return BuildOutput(builder=builder, packages=[], smoke=self.smoke(["true"], options), cpu_target=image_target)
