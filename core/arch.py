"""CPU micro-architectures: classify nodes, choose images, derive compiler flags and LLVM CPU names.

Every question about CPUs is answered by ``archspec`` (its target DAG, its detection rules, its
compiler tables); this module only adapts it to the console's needs (DESIGN §5, §6):

* classification is a pure function of ``/proc/cpuinfo`` text (or of a probe's vendor + flags),
  so the console can classify any node, whatever CPU the console itself runs on;
* image choice follows archspec's partial order, like EESSI: the most specific image the CPU can
  run, never a vendor-specific image of another vendor, generic images as the fallback;
* C compiler flags and LLVM CPU names are derived from archspec's compiler data (what each kind
  of depot makes of them, such as Julia's ``JULIA_CPU_TARGET``, is in ``core.kinds``).
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import archspec.cpu
from archspec.cpu import TARGETS, Microarchitecture, UnsupportedMicroarchitecture
from archspec.cpu import detect as _detect
from archspec.cpu.schema import TARGETS_JSON

from core.errors import BadInput
from core.node.probe import CPUINFO_ENV, count_processors
from core.node.probe import parse_cpuinfo as probe_cpuinfo

X86_64 = "x86_64"
AARCH64 = "aarch64"

_EXAMPLES = "x86_64, x86_64_v3, haswell, zen3, aarch64, neoverse_v1"

#: How many missing feature names an explanation lists before summarising the rest.
_MAX_LISTED_FEATURES = 4


# --------------------------------------------------------------------------- names


def is_known_microarch(name: str) -> bool:
    """True if ``name`` is an archspec micro-architecture (``x86_64_v3``, ``zen3``, ...)."""
    return isinstance(name, str) and name in TARGETS


def check_microarch(name: str) -> str:
    """Return ``name`` if archspec knows it, else raise BadInput with examples of valid names."""
    if not is_known_microarch(name):
        raise BadInput(f"unknown micro-architecture {name!r} (archspec names such as {_EXAMPLES})")
    return name


def host_microarch() -> str:
    """The micro-architecture of the machine running this code, as archspec detects it.

    With ``$DEPOT_PROBE_CPUINFO`` set (the node's test/override hook, see ``core.node.probe``) the
    CPU described by that cpuinfo file is classified instead, as the probe reports it.
    """
    path = os.environ.get(CPUINFO_ENV)
    if path:
        try:
            text = Path(path).read_text("utf-8", errors="replace")
        except OSError as exc:
            raise BadInput(f"${CPUINFO_ENV}={path}: cannot read it ({exc.strerror})") from None
        return classify_cpuinfo(text)
    return archspec.cpu.host().name


# --------------------------------------------------------------------------- cpuinfo


@dataclass(frozen=True)
class CpuInfo:
    """What classification needs to know about a CPU, as read from ``/proc/cpuinfo``.

    ``vendor`` is ``vendor_id`` on x86 (``GenuineIntel``, ``AuthenticAMD``) and archspec's
    readable name of ``CPU implementer`` on aarch64 (``ARM``, ``Fujitsu``, ...). ``flags`` are the
    kernel's feature names (``flags`` on x86, ``Features`` on aarch64). ``cpu_part`` is aarch64's
    ``CPU part`` (``0xd40``), empty elsewhere.
    """

    family: str
    vendor: str
    flags: frozenset[str]
    model_name: str = ""
    cpus: int = 1
    cpu_part: str = ""


def _arm_vendor(implementer: str) -> str:
    """archspec's readable name of an aarch64 ``CPU implementer`` code (``0x41`` -> ``ARM``)."""
    if not implementer:
        return "generic"
    vendors: dict[str, str] = TARGETS_JSON["conversions"]["arm_vendors"]
    return vendors.get(implementer, implementer)


def cpuinfo_from_probe(probe: Mapping[str, Any]) -> CpuInfo:
    """The ``CpuInfo`` of a probe dict (``core.node.probe`` shape).

    The family is decided by what the node's cpuinfo holds, not by where the console runs: aarch64
    kernels print ``CPU implementer``/``Features``, x86 kernels ``vendor_id``/``flags``; only when
    neither is there does ``machine`` (``uname -m``) decide. The aarch64 vendor is archspec's
    readable name of the implementer code (``0x41`` -> ``ARM``), as archspec's own reader does.
    """
    cpu = probe.get("cpuinfo") or {}
    cpus = int(probe.get("cpus") or 1)
    model_name = str(cpu.get("model_name") or "")
    implementer, features = str(cpu.get("implementer") or ""), list(cpu.get("features") or [])
    vendor, flags = str(cpu.get("vendor") or ""), list(cpu.get("flags") or [])
    machine = str(probe.get("machine") or "")
    if implementer or features or (not vendor and not flags and machine in ("aarch64", "arm64")):
        return CpuInfo(
            family=AARCH64,
            vendor=_arm_vendor(implementer),
            flags=frozenset(features),
            model_name=model_name,
            cpus=cpus,
            cpu_part=str(cpu.get("part") or ""),
        )
    if vendor or flags or machine in ("x86_64", "amd64"):
        return CpuInfo(
            family=X86_64, vendor=vendor or "generic", flags=frozenset(flags), model_name=model_name, cpus=cpus
        )
    raise BadInput(f"cannot classify {machine or 'an unknown'} CPU: no x86_64 or aarch64 cpuinfo fields")


def parse_cpuinfo(text: str) -> CpuInfo:
    """Parse ``/proc/cpuinfo`` text of an x86_64 or aarch64 Linux machine.

    The probe's parser reads it (``core.node.probe.parse_cpuinfo``: the first processor block
    gives vendor and flags, as archspec's own reader does); the number of ``processor`` entries
    gives ``cpus``. Raises BadInput if the text is neither.
    """
    fields = probe_cpuinfo(text)
    if not any(fields[key] for key in ("vendor", "flags", "implementer", "features")):
        raise BadInput(
            "not x86_64 or aarch64 /proc/cpuinfo text: found neither vendor_id/flags nor CPU implementer/Features"
        )
    return cpuinfo_from_probe({"cpuinfo": fields, "cpus": count_processors(text)})


def _compatible(family: str, info: Microarchitecture, target: Microarchitecture) -> bool:
    """archspec's registered compatibility check for ``family``, independent of the host."""
    if family == AARCH64 and platform.system() == "Darwin":
        # On macOS archspec's aarch64 check switches to a sysctl model-name rule that cannot
        # apply to Linux cpuinfo text; apply the rule it uses on Linux instead.
        if target.vendor == "generic" and target.name != AARCH64:
            return False
        return (
            target.family == TARGETS[AARCH64]
            and target.vendor in (info.vendor, "generic")
            and target.features.issubset(info.features)
        )
    return bool(_detect.COMPATIBILITY_CHECKS[family](info, target))


def classify(info: CpuInfo) -> str:
    """The archspec micro-architecture name of the CPU described by ``info``.

    Reuses archspec's detection: the partial Microarchitecture is built the way
    ``archspec.cpu.detect.proc_cpuinfo`` builds it, candidates are filtered with archspec's
    registered compatibility check for the family, and the best candidate is picked with the
    rules of ``archspec.cpu.host()`` (best generic first, aarch64 ``CPU part`` match, descendants
    of the best generic, deepest then most features). Unlike ``host()`` nothing here looks at the
    machine running the code.
    """
    if info.family not in (X86_64, AARCH64):
        raise BadInput(f"cannot classify {info.family} CPUs (only x86_64 and aarch64)")
    partial = _detect.partial_uarch(vendor=info.vendor, features=set(info.flags), cpu_part=info.cpu_part)
    candidates = [t for t in TARGETS.values() if _compatible(info.family, partial, t)]
    if not candidates:
        return info.family

    def sorting_fn(item: Microarchitecture) -> tuple[int, int]:
        return len(item.ancestors), len(item.features)

    generic_candidates = [c for c in candidates if c.vendor == "generic"]
    if not generic_candidates:  # archspec always admits the family root; be safe anyway
        return info.family
    best_generic = max(generic_candidates, key=sorting_fn)
    if info.cpu_part and any(c.cpu_part == info.cpu_part for c in candidates):
        candidates = [c for c in candidates if c.cpu_part == info.cpu_part]
    candidates = [c for c in candidates if c > best_generic]
    if not candidates:
        return best_generic.name
    return max(candidates, key=sorting_fn).name


def classify_cpuinfo(text: str) -> str:
    """``classify(parse_cpuinfo(text))``: the archspec name of the CPU in that cpuinfo text."""
    return classify(parse_cpuinfo(text))


# --------------------------------------------------------------------------- image choice


@dataclass(frozen=True)
class Choice:
    """The image chosen for a CPU, why, and why each other image was not chosen."""

    image: str | None
    reason: str
    rejected: dict[str, str] = field(default_factory=dict)


def _can_run(cpu: Microarchitecture, image: Microarchitecture) -> bool:
    return cpu >= image


def _feature_list(missing: Iterable[str]) -> str:
    names = sorted(missing)
    shown = ", ".join(names[:_MAX_LISTED_FEATURES])
    extra = len(names) - _MAX_LISTED_FEATURES
    return f"{shown} and {extra} more" if extra > 0 else shown


def why_not(cpu: str, image: str) -> str | None:
    """Why a ``cpu`` cannot run ``image`` (both archspec names), or None if it can.

    The explanation is one clause, in order of precedence: ``other family: …``, ``other vendor:
    …`` (a vendor-specific image for a CPU of another vendor), ``missing f1, f2, … and N more``
    (features the image needs that the CPU lacks), ``vendor-specific image (…) for a generic …
    CPU``, ``newer than <cpu>`` (a descendant whose extra features archspec does not list, as for
    aarch64 ISA levels), ``not in <cpu>'s lineage`` (the partial order says no for another
    reason).
    """
    cpu_t, image_t = TARGETS[check_microarch(cpu)], TARGETS[check_microarch(image)]
    if _can_run(cpu_t, image_t):
        return None
    if cpu_t.family != image_t.family:
        return f"other family: {image_t.family.name} image, {cpu_t.family.name} CPU"
    missing = image_t.features - cpu_t.features
    if image_t.vendor != "generic" and cpu_t.vendor not in ("generic", image_t.vendor):
        return f"other vendor: {image_t.vendor} image, {cpu_t.vendor} CPU"
    if missing:
        return f"missing {_feature_list(missing)}"
    if image_t.vendor != "generic" and cpu_t.vendor == "generic":
        return f"vendor-specific image ({image_t.vendor}) for a generic {cpu} CPU"
    if image_t > cpu_t:
        return f"newer than {cpu}"
    return f"not in {cpu}'s lineage"


def _preference(target: Microarchitecture) -> tuple[bool, int, int, str]:
    # Vendor-specific before generic, then deeper, then more features, then name (determinism).
    return (target.vendor == "generic", -len(target.ancestors), -len(target.features), target.name)


def _best(cpu: str, images: list[str]) -> tuple[str | None, dict[str, str]]:
    """Apply the normal rule: best runnable image and per-image rejections."""
    rejected: dict[str, str] = {}
    runnable: list[Microarchitecture] = []
    for name in images:
        if not is_known_microarch(name):
            rejected[name] = "unknown micro-architecture"
            continue
        reason = why_not(cpu, name)
        if reason is None:
            runnable.append(TARGETS[name])
        else:
            rejected[name] = reason
    if not runnable:
        return None, rejected
    # Keep only maximal images: one that is an ancestor of another runnable image is less specific.
    maximal = [t for t in runnable if not any(o > t for o in runnable)]
    best = sorted(maximal, key=_preference)[0]
    for t in runnable:
        if t is not best:
            rejected[t.name] = f"runnable, but {best.name} is preferred"
    return best.name, rejected


def _normal_reason(cpu: str, image: str | None, rejected: dict[str, str], images: list[str]) -> str:
    if image is None:
        if not images:
            return f"{cpu}: the release has no images"
        return f"{cpu} cannot run " + "; cannot run ".join(f"{name}: {rejected[name]}" for name in images)
    if image == cpu:
        return f"{cpu} runs {image}: exact match"
    kind = "generic fallback" if TARGETS[image].vendor == "generic" else "most specific compatible"
    return f"{cpu} runs {image}: {kind}"


def choose_image(cpu: str, images: Iterable[str], override: str | None = None) -> Choice:
    """Choose which of a release's ``images`` a node with micro-architecture ``cpu`` should use.

    Rule (DESIGN §5, as EESSI does): among the images the CPU can run (the image is the CPU or an
    ancestor of it in archspec's partial order), take the most specific. A vendor-specific image
    (``zen3``, ``haswell``) is only eligible for CPUs of that vendor; generic images (``x86_64``,
    ``x86_64_v2``..``v4``, ``aarch64``) are eligible whenever the features allow, and rank after
    vendor-specific ones; remaining ties go to the deeper image, then more features, then name.

    ``override`` (set per node) wins if the release has that image, even one the CPU cannot run
    (the reason then says so); if the release lacks it, the normal rule applies and the reason
    says the override was ignored. With no runnable image, ``image`` is None and ``reason``
    lists why each image is unusable. Raises BadInput for an unknown ``cpu``.
    """
    check_microarch(cpu)
    names = sorted(set(images))
    image, rejected = _best(cpu, names)

    if override is not None and override in names:
        others = {n: r for n, r in rejected.items() if n != override}
        if image is not None and image != override:
            others[image] = f"runnable, but override {override} is set for this node"
        if is_known_microarch(override):
            problem = why_not(cpu, override)
        else:
            problem = "unknown micro-architecture"
        reason = f"override {override} honoured"
        if problem is not None:
            reason += f", although {cpu} cannot run it: {problem}"
        return Choice(image=override, reason=reason, rejected=others)

    reason = _normal_reason(cpu, image, rejected, names)
    if override is not None:
        listed = ", ".join(names) if names else "none"
        reason = f"override {override} is not among the release's images ({listed}); " + reason
    return Choice(image=image, reason=reason, rejected=rejected)


# --------------------------------------------------------------------------- LLVM CPU names


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version.split("-")[0]))


def llvm_cpu_name(arch: str) -> str | None:
    """The LLVM CPU name in archspec's clang flags for micro-architecture ``arch``, or None.

    Renders every clang entry of archspec's table the way ``optimization_flags("clang", …)``
    does (``flags.format(name=…)``), newest entry (highest lowest-version) first. Calling
    ``optimization_flags`` itself is not enough: it returns the first entry a version satisfies,
    so an older open-ended entry can shadow a newer one (``neoverse_v1``: ``-march=armv8.4-a+…``
    hides ``-mcpu=neoverse-v1``). A ``-mcpu=`` value (a CPU) wins over a ``-march=`` one (an
    ISA level, ``+extensions`` dropped). Runtimes that take LLVM names build on it (Julia's
    ``JULIA_CPU_TARGET``: ``core.kinds.julia.julia_cpu_target``).
    """
    target = TARGETS[check_microarch(arch)]
    entries = sorted(
        target.compilers.get("clang", []),
        key=lambda e: _version_key(e["versions"].split(":")[0]),
        reverse=True,
    )
    rendered = [e["flags"].format(**{"name": target.name, **e}) for e in entries]
    for option in ("-mcpu=", "-march="):
        for flags in rendered:
            match = re.search(re.escape(option) + r"([^\s+]+)", flags)
            if match:
                return match.group(1)
    return None


# --------------------------------------------------------------------------- compiler flags

#: Flags used when archspec cannot give any for the compiler/version: the family's baseline.
_GENERIC_FLAGS = {
    X86_64: "-march=x86-64 -mtune=generic",
    AARCH64: "-march=armv8-a -mtune=generic",
}

_VERSION_ARGS = {"gcc": ["-dumpfullversion", "-dumpversion"]}


def compiler_version(compiler: str) -> str | None:
    """The local ``compiler``'s version (``gcc -dumpfullversion``), or None if it cannot be run."""
    args = [compiler, *_VERSION_ARGS.get(compiler, ["-dumpversion"])]
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.match(r"\s*(\d+(?:\.\d+)*)", out.stdout)
    return match.group(1) if out.returncode == 0 and match else None


def compiler_flags(arch: str, compiler: str = "gcc", version: str | None = None) -> str:
    """archspec's optimization flags for ``arch`` with ``compiler`` at ``version``.

    ``version`` defaults to the local compiler's (``gcc -dumpfullversion``). Fallbacks, so a
    build never fails for want of flags:

    * the compiler version is too old for ``arch``: the flags of the most specific ancestor of
      ``arch`` that this version supports (e.g. an old gcc asked for ``zen4`` gets ``zen3``'s);
    * no ancestor works, the compiler cannot be run, or archspec has no data on it: the family
      baseline ``-march=x86-64 -mtune=generic`` / ``-march=armv8-a -mtune=generic`` (other
      families: empty string, i.e. the compiler's defaults).

    Raises BadInput for an unknown ``arch`` or a ``version`` that is not dot-separated digits.
    """
    target = TARGETS[check_microarch(arch)]
    baseline = _GENERIC_FLAGS.get(target.family.name, "")
    if version is None:
        version = compiler_version(compiler)
        if version is None:
            return baseline
    elif not re.fullmatch(r"\d+(?:\.\d+)*", version):
        raise BadInput(f"compiler version {version!r} is not dot-separated digits (e.g. 12.2.0)")
    chain = [target, *sorted(target.ancestors, key=lambda t: (-len(t.ancestors), t.name))]
    for candidate in chain:
        try:
            flags = candidate.optimization_flags(compiler, version)
        except (UnsupportedMicroarchitecture, ValueError, IndexError):
            continue
        if flags:
            return flags
    return baseline
