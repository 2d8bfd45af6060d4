"""``depot-init.sh``: the POSIX sh a node sources to use a depot in place (``console cvmfs init-script``).

The script (the template ``depot-init.sh`` beside this module) needs nothing installed on the node
but ``sh`` and ``awk``. Its image choice is ``core.arch``'s rule, re-stated in awk over archspec's
CPU table, which is generated here from the archspec the console runs (every x86_64 and aarch64
target in archspec's order, with its vendor, depth, features, ancestors and aarch64 ``CPU part``),
so the script and ``core.arch`` answer alike (tests/unit/test_depot_init.py runs it under dash and
bash on every cpuinfo fixture). The env it exports comes from the release's ``depot.env``
(``core.node.mount.env_file``), the same source ``console node env --mount`` uses.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from core.arch import AARCH64, X86_64

FAMILIES = (X86_64, AARCH64)


def _awk_string(text: str) -> str:
    if any(c in text for c in "'\"\\\n"):
        raise ValueError(f"archspec value {text!r} cannot be embedded in depot-init.sh")
    return f'"{text}"'


@cache
def arch_table() -> str:
    """The awk statements that load archspec's table (``T(...)`` per target, ``ARMV[...]`` per vendor)."""
    from archspec.cpu import TARGETS
    from archspec.cpu.schema import TARGETS_JSON

    lines = []
    for t in TARGETS.values():
        if t.family.name not in FAMILIES:
            continue
        args = [
            t.name,
            t.family.name,
            t.vendor,
            str(len(t.ancestors)),
            str(len(t.features)),
            t.cpu_part or "",
            " ".join(sorted(t.features)),
            " ".join(a.name for a in t.ancestors),
        ]
        lines.append("T(" + ", ".join(_awk_string(a) for a in args) + ")")
    for code, vendor in TARGETS_JSON["conversions"]["arm_vendors"].items():
        lines.append(f"ARMV[{_awk_string(code)}] = {_awk_string(vendor)}")
    return "\n    ".join(lines)


def template() -> str:
    return resources.files("core.site.cvmfs").joinpath("depot-init.sh").read_text("utf-8")


def render_init_script(depot: Path | str, script: str = "") -> str:
    """The script for a depot that nodes see at ``depot`` (``<node_mount>/<prefix>``)."""
    import archspec

    depot = str(depot)
    if "'" in depot or "\n" in depot:
        raise ValueError(f"depot path {depot!r} cannot be embedded in depot-init.sh")
    script = script or str(Path(depot).parent / "depot-init.sh")
    text = template()
    return "#!/bin/sh\n" + text.replace("@TABLE@", arch_table()).replace("@DEPOT@", depot).replace(
        "@SCRIPT@", script
    ).replace("@ARCHSPEC@", archspec.__version__)
