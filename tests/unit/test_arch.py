"""core.arch: cpuinfo classification, image choice, Julia targets and compiler flags.

The cpuinfo fixtures are real /proc/cpuinfo layouts and flag lists of the named CPUs (two
processor blocks each), so classification is checked against archspec's own rules on data the
console will actually receive, whatever CPU runs the tests.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import archspec.cpu
import pytest

from core.arch import (
    Choice,
    CpuInfo,
    check_microarch,
    choose_image,
    classify,
    classify_cpuinfo,
    compiler_flags,
    compiler_version,
    host_microarch,
    is_known_microarch,
    parse_cpuinfo,
    why_not,
)
from core.errors import BadInput
from core.kinds.julia import julia_cpu_target, julia_multi_target

CPUINFO = Path(__file__).parents[1] / "fixtures" / "cpuinfo"


def cpuinfo(name: str) -> str:
    return (CPUINFO / f"{name}.txt").read_text()


# fixture -> (classification, family, vendor, model name, cpu part)
FIXTURES = {
    "qemu_kvm64": ("x86_64", "x86_64", "GenuineIntel", "Common KVM processor", ""),
    "haswell_e5_2680v3": (
        "haswell",
        "x86_64",
        "GenuineIntel",
        "Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz",
        "",
    ),
    "skylake_avx512_gold6148": (
        "skylake_avx512",
        "x86_64",
        "GenuineIntel",
        "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz",
        "",
    ),
    "icelake_platinum8358": (
        "icelake",
        "x86_64",
        "GenuineIntel",
        "Intel(R) Xeon(R) Platinum 8358 CPU @ 2.60GHz",
        "",
    ),
    "zen2_epyc7742": ("zen2", "x86_64", "AuthenticAMD", "AMD EPYC 7742 64-Core Processor", ""),
    "zen3_epyc7763": ("zen3", "x86_64", "AuthenticAMD", "AMD EPYC 7763 64-Core Processor", ""),
    "zen4_epyc9654": ("zen4", "x86_64", "AuthenticAMD", "AMD EPYC 9654 96-Core Processor", ""),
    "neoverse_n1_graviton2": ("neoverse_n1", "aarch64", "ARM", "", "0xd0c"),
    "neoverse_v1_graviton3": ("neoverse_v1", "aarch64", "ARM", "", "0xd40"),
}


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_parse_and_classify_fixture(fixture: str) -> None:
    expected, family, vendor, model, part = FIXTURES[fixture]
    text = cpuinfo(fixture)
    info = parse_cpuinfo(text)
    assert (info.family, info.vendor, info.model_name, info.cpu_part, info.cpus) == (
        family,
        vendor,
        model,
        part,
        2,
    )
    assert classify(info) == expected
    assert classify_cpuinfo(text) == expected


def test_parse_keeps_the_kernel_flag_names() -> None:
    x86 = parse_cpuinfo(cpuinfo("zen3_epyc7763"))
    assert {"avx2", "vaes", "vpclmulqdq", "pku", "sse4a"} <= x86.flags
    assert "avx512f" not in x86.flags
    arm = parse_cpuinfo(cpuinfo("neoverse_v1_graviton3"))
    assert {"sve", "bf16", "i8mm", "svebf16", "rng"} <= arm.flags
    assert len(arm.flags) == 38


def test_classify_from_probe_fields_without_cpuinfo_text() -> None:
    """The fleet probe sends vendor + flags; a CpuInfo built from them classifies the same."""
    flags = parse_cpuinfo(cpuinfo("zen2_epyc7742")).flags
    assert classify(CpuInfo(family="x86_64", vendor="AuthenticAMD", flags=flags)) == "zen2"
    # Same flags under another vendor (Hygon's Zen-based Dhyana): AMD lines are out, the best
    # generic level remains.
    assert classify(CpuInfo(family="x86_64", vendor="HygonGenuine", flags=flags)) == "x86_64_v3"
    # An aarch64 CPU part archspec does not know falls back to feature matching.
    v1 = parse_cpuinfo(cpuinfo("neoverse_v1_graviton3"))
    unknown_part = CpuInfo(family="aarch64", vendor="ARM", flags=v1.flags, cpu_part="0xfff")
    assert classify(unknown_part) == "neoverse_v1"


def test_parse_rejects_text_that_is_not_cpuinfo() -> None:
    with pytest.raises(BadInput) as err:
        parse_cpuinfo("hello world\n\nno colon here\n")
    assert str(err.value) == (
        "not x86_64 or aarch64 /proc/cpuinfo text: found neither vendor_id/flags nor CPU implementer/Features"
    )
    with pytest.raises(BadInput) as err:
        classify(CpuInfo(family="ppc64le", vendor="IBM", flags=frozenset()))
    assert str(err.value) == "cannot classify ppc64le CPUs (only x86_64 and aarch64)"


def test_known_names_and_host() -> None:
    assert is_known_microarch("zen3") and is_known_microarch("x86_64_v4")
    assert not is_known_microarch("zen99")
    assert check_microarch("neoverse_v1") == "neoverse_v1"
    with pytest.raises(BadInput) as err:
        check_microarch("foo")
    assert str(err.value) == (
        "unknown micro-architecture 'foo' (archspec names such as "
        "x86_64, x86_64_v3, haswell, zen3, aarch64, neoverse_v1)"
    )
    assert err.value.exit_code == 2
    assert host_microarch() == archspec.cpu.host().name
    assert is_known_microarch(host_microarch())


GENERIC_LEVELS = ["x86_64", "x86_64_v3", "x86_64_v4"]
X86_OR_ZEN3 = ["x86_64", "zen3"]
V3_OR_HASWELL = ["x86_64_v3", "haswell"]
ARM_IMAGES = ["aarch64", "neoverse_v1"]

V4_MISSING = "missing avx512bw, avx512cd, avx512dq, avx512f and 1 more"
ZEN3_FOR_INTEL = "other vendor: AuthenticAMD image, GenuineIntel CPU"
HASWELL_FOR_AMD = "other vendor: GenuineIntel image, AuthenticAMD CPU"
ARM_ON_X86 = "other family: aarch64 image, x86_64 CPU"
X86_ON_ARM = "other family: x86_64 image, aarch64 CPU"

# (fixture, images) -> (chosen image, reason, rejected)
CHOICES = [
    # The old generic CPU (QEMU kvm64) picks x86_64, and nothing newer.
    (
        "qemu_kvm64",
        GENERIC_LEVELS,
        "x86_64",
        "x86_64 runs x86_64: exact match",
        {
            "x86_64_v3": "missing abm, avx, avx2, bmi1 and 15 more",
            "x86_64_v4": "missing abm, avx, avx2, avx512bw and 20 more",
        },
    ),
    (
        "qemu_kvm64",
        X86_OR_ZEN3,
        "x86_64",
        "x86_64 runs x86_64: exact match",
        {
            "zen3": "missing abm, aes, avx, avx2 and 28 more",
        },
    ),
    (
        "qemu_kvm64",
        V3_OR_HASWELL,
        None,
        "x86_64 cannot run haswell: missing abm, aes, avx, avx2 and 18 more; "
        "cannot run x86_64_v3: missing abm, avx, avx2, bmi1 and 15 more",
        {
            "haswell": "missing abm, aes, avx, avx2 and 18 more",
            "x86_64_v3": "missing abm, avx, avx2, bmi1 and 15 more",
        },
    ),
    (
        "haswell_e5_2680v3",
        GENERIC_LEVELS,
        "x86_64_v3",
        "haswell runs x86_64_v3: generic fallback",
        {
            "x86_64": "runnable, but x86_64_v3 is preferred",
            "x86_64_v4": V4_MISSING,
        },
    ),
    (
        "haswell_e5_2680v3",
        X86_OR_ZEN3,
        "x86_64",
        "haswell runs x86_64: generic fallback",
        {
            "zen3": ZEN3_FOR_INTEL,
        },
    ),
    (
        "haswell_e5_2680v3",
        V3_OR_HASWELL,
        "haswell",
        "haswell runs haswell: exact match",
        {
            "x86_64_v3": "runnable, but haswell is preferred",
        },
    ),
    (
        "skylake_avx512_gold6148",
        GENERIC_LEVELS,
        "x86_64_v4",
        "skylake_avx512 runs x86_64_v4: generic fallback",
        {
            "x86_64": "runnable, but x86_64_v4 is preferred",
            "x86_64_v3": "runnable, but x86_64_v4 is preferred",
        },
    ),
    (
        "skylake_avx512_gold6148",
        V3_OR_HASWELL,
        "haswell",
        "skylake_avx512 runs haswell: most specific compatible",
        {
            "x86_64_v3": "runnable, but haswell is preferred",
        },
    ),
    (
        "icelake_platinum8358",
        GENERIC_LEVELS,
        "x86_64_v4",
        "icelake runs x86_64_v4: generic fallback",
        {
            "x86_64": "runnable, but x86_64_v4 is preferred",
            "x86_64_v3": "runnable, but x86_64_v4 is preferred",
        },
    ),
    (
        "icelake_platinum8358",
        X86_OR_ZEN3,
        "x86_64",
        "icelake runs x86_64: generic fallback",
        {
            "zen3": ZEN3_FOR_INTEL,
        },
    ),
    (
        "icelake_platinum8358",
        V3_OR_HASWELL,
        "haswell",
        "icelake runs haswell: most specific compatible",
        {
            "x86_64_v3": "runnable, but haswell is preferred",
        },
    ),
    (
        "zen2_epyc7742",
        GENERIC_LEVELS,
        "x86_64_v3",
        "zen2 runs x86_64_v3: generic fallback",
        {
            "x86_64": "runnable, but x86_64_v3 is preferred",
            "x86_64_v4": V4_MISSING,
        },
    ),
    # zen2 cannot run the zen3 image: it lacks exactly these three features.
    (
        "zen2_epyc7742",
        X86_OR_ZEN3,
        "x86_64",
        "zen2 runs x86_64: generic fallback",
        {
            "zen3": "missing pku, vaes, vpclmulqdq",
        },
    ),
    (
        "zen2_epyc7742",
        V3_OR_HASWELL,
        "x86_64_v3",
        "zen2 runs x86_64_v3: generic fallback",
        {
            "haswell": HASWELL_FOR_AMD,
        },
    ),
    (
        "zen3_epyc7763",
        GENERIC_LEVELS,
        "x86_64_v3",
        "zen3 runs x86_64_v3: generic fallback",
        {
            "x86_64": "runnable, but x86_64_v3 is preferred",
            "x86_64_v4": V4_MISSING,
        },
    ),
    (
        "zen3_epyc7763",
        X86_OR_ZEN3,
        "zen3",
        "zen3 runs zen3: exact match",
        {
            "x86_64": "runnable, but zen3 is preferred",
        },
    ),
    (
        "zen3_epyc7763",
        V3_OR_HASWELL,
        "x86_64_v3",
        "zen3 runs x86_64_v3: generic fallback",
        {
            "haswell": HASWELL_FOR_AMD,
        },
    ),
    (
        "zen4_epyc9654",
        GENERIC_LEVELS,
        "x86_64_v4",
        "zen4 runs x86_64_v4: generic fallback",
        {
            "x86_64": "runnable, but x86_64_v4 is preferred",
            "x86_64_v3": "runnable, but x86_64_v4 is preferred",
        },
    ),
    (
        "zen4_epyc9654",
        X86_OR_ZEN3,
        "zen3",
        "zen4 runs zen3: most specific compatible",
        {
            "x86_64": "runnable, but zen3 is preferred",
        },
    ),
    (
        "zen4_epyc9654",
        ARM_IMAGES,
        None,
        f"zen4 cannot run aarch64: {ARM_ON_X86}; cannot run neoverse_v1: {ARM_ON_X86}",
        {
            "aarch64": ARM_ON_X86,
            "neoverse_v1": ARM_ON_X86,
        },
    ),
    (
        "neoverse_v1_graviton3",
        ARM_IMAGES,
        "neoverse_v1",
        "neoverse_v1 runs neoverse_v1: exact match",
        {
            "aarch64": "runnable, but neoverse_v1 is preferred",
        },
    ),
    (
        "neoverse_n1_graviton2",
        ARM_IMAGES,
        "aarch64",
        "neoverse_n1 runs aarch64: generic fallback",
        {
            "neoverse_v1": "missing asimdfhm, bf16, dcpodp, dgh and 13 more",
        },
    ),
    # An aarch64 node offered only x86 images gets nothing, and is told why.
    (
        "neoverse_v1_graviton3",
        GENERIC_LEVELS,
        None,
        f"neoverse_v1 cannot run x86_64: {X86_ON_ARM}; cannot run x86_64_v3: {X86_ON_ARM}; "
        f"cannot run x86_64_v4: {X86_ON_ARM}",
        {
            "x86_64": X86_ON_ARM,
            "x86_64_v3": X86_ON_ARM,
            "x86_64_v4": X86_ON_ARM,
        },
    ),
    (
        "neoverse_n1_graviton2",
        X86_OR_ZEN3,
        None,
        f"neoverse_n1 cannot run x86_64: {X86_ON_ARM}; cannot run zen3: {X86_ON_ARM}",
        {
            "x86_64": X86_ON_ARM,
            "zen3": X86_ON_ARM,
        },
    ),
]


@pytest.mark.parametrize(
    ("fixture", "images", "image", "reason", "rejected"),
    CHOICES,
    ids=[f"{c[0]}-{'+'.join(c[1])}" for c in CHOICES],
)
def test_choose_image(fixture, images, image, reason, rejected) -> None:
    cpu = classify_cpuinfo(cpuinfo(fixture))
    choice = choose_image(cpu, images)
    assert choice == Choice(image=image, reason=reason, rejected=rejected)
    # Order of the release's images never matters.
    assert choose_image(cpu, list(reversed(images))) == choice


def test_override_present_and_runnable_is_honoured() -> None:
    assert choose_image("zen3", X86_OR_ZEN3, override="x86_64") == Choice(
        image="x86_64",
        reason="override x86_64 honoured",
        rejected={"zen3": "runnable, but override x86_64 is set for this node"},
    )


def test_override_the_cpu_cannot_run_is_honoured_with_a_warning() -> None:
    assert choose_image("zen2", X86_OR_ZEN3, override="zen3") == Choice(
        image="zen3",
        reason="override zen3 honoured, although zen2 cannot run it: missing pku, vaes, vpclmulqdq",
        rejected={"x86_64": "runnable, but override zen3 is set for this node"},
    )
    assert choose_image("neoverse_v1", GENERIC_LEVELS, override="x86_64_v3") == Choice(
        image="x86_64_v3",
        reason=f"override x86_64_v3 honoured, although neoverse_v1 cannot run it: {X86_ON_ARM}",
        rejected={"x86_64": X86_ON_ARM, "x86_64_v4": X86_ON_ARM},
    )


def test_override_absent_from_release_falls_back_to_the_rule() -> None:
    assert choose_image("haswell", V3_OR_HASWELL, override="zen3") == Choice(
        image="haswell",
        reason="override zen3 is not among the release's images (haswell, x86_64_v3); "
        "haswell runs haswell: exact match",
        rejected={"x86_64_v3": "runnable, but haswell is preferred"},
    )


def test_choice_edge_cases() -> None:
    assert choose_image("zen3", []) == Choice(None, "zen3: the release has no images", {})
    # An image name archspec does not know is rejected, not fatal.
    assert choose_image("zen3", ["zen3", "bogus"]) == Choice(
        "zen3", "zen3 runs zen3: exact match", {"bogus": "unknown micro-architecture"}
    )
    # Incomparable vendor-specific images: the deeper one wins, deterministically.
    assert choose_image("zen4", ["zen3", "x86_64_v4"]).image == "zen3"
    assert choose_image("icelake", ["skylake_avx512", "haswell", "x86_64_v4"]).image == ("skylake_avx512")
    with pytest.raises(BadInput):
        choose_image("zen99", ["x86_64"])


@pytest.mark.parametrize(
    ("cpu", "image", "expected"),
    [
        ("zen3", "zen3", None),
        ("zen3", "x86_64_v3", None),
        ("icelake", "haswell", None),
        ("neoverse_v1", "neoverse_n1", None),
        ("zen2", "zen3", "missing pku, vaes, vpclmulqdq"),
        ("zen2", "x86_64_v4", "missing avx512bw, avx512cd, avx512dq, avx512f and 1 more"),
        ("haswell", "broadwell", "missing adx, rdseed"),
        ("zen3", "skylake_avx512", "other vendor: GenuineIntel image, AuthenticAMD CPU"),
        ("haswell", "zen2", "other vendor: AuthenticAMD image, GenuineIntel CPU"),
        ("neoverse_v1", "a64fx", "other vendor: Fujitsu image, ARM CPU"),
        ("neoverse_v1", "zen3", "other family: x86_64 image, aarch64 CPU"),
        ("x86_64_v4", "x86_64_v4", None),
        ("x86_64_v3", "zen", "missing aes, clflushopt, clzero, fsgsbase and 5 more"),
        (
            "x86_64_v3",
            "nehalem",
            "vendor-specific image (GenuineIntel) for a generic x86_64_v3 CPU",
        ),
        ("neoverse_v2", "neoverse_v1", "missing dgh, dit, rng"),
        ("aarch64", "armv8.2a", "newer than aarch64"),
        ("neoverse_n1", "armv8.4a", "not in neoverse_n1's lineage"),
    ],
)
def test_why_not(cpu: str, image: str, expected: str | None) -> None:
    assert why_not(cpu, image) == expected


@pytest.mark.parametrize(
    ("arch", "target", "multi"),
    [
        ("x86_64", "generic", "generic;sandybridge,-xsaveopt,clone_all;haswell,-rdrnd,base(1)"),
        ("x86_64_v2", "x86-64-v2", "generic;x86-64-v2,clone_all"),
        ("x86_64_v3", "x86-64-v3", "generic;x86-64-v3,clone_all"),
        ("x86_64_v4", "x86-64-v4", "generic;x86-64-v4,clone_all"),
        ("haswell", "haswell", "generic;haswell,clone_all"),
        ("skylake_avx512", "skylake-avx512", "generic;skylake-avx512,clone_all"),
        ("icelake", "icelake-client", "generic;icelake-client,clone_all"),
        ("zen2", "znver2", "generic;znver2,clone_all"),
        ("zen3", "znver3", "generic;znver3,clone_all"),
        ("zen4", "znver4", "generic;znver4,clone_all"),
        (
            "aarch64",
            "generic",
            "generic;cortex-a57;thunderx2t99;carmel,clone_all;apple-m1,base(3);neoverse-512tvb,base(3)",
        ),
        ("neoverse_n1", "neoverse-n1", "generic;neoverse-n1,clone_all"),
        ("neoverse_v1", "neoverse-v1", "generic;neoverse-v1,clone_all"),
        ("armv8.2a", "armv8.2-a", "generic;armv8.2-a,clone_all"),
    ],
)
def test_julia_targets(arch: str, target: str, multi: str) -> None:
    assert julia_cpu_target(arch) == target
    assert julia_multi_target(arch) == multi


def test_julia_target_rejects_unknown_arch() -> None:
    with pytest.raises(BadInput):
        julia_cpu_target("znver3")
    with pytest.raises(BadInput):
        julia_multi_target("foo")


@pytest.mark.parametrize(
    ("arch", "compiler", "version", "flags"),
    [
        ("haswell", "gcc", "12.2.0", "-march=haswell -mtune=haswell"),
        ("zen3", "gcc", "12.2.0", "-march=znver3 -mtune=znver3"),
        ("zen4", "gcc", "13.2.0", "-march=znver4 -mtune=znver4"),
        ("skylake_avx512", "clang", "15.0.7", "-march=skylake-avx512 -mtune=skylake-avx512"),
        ("x86_64_v3", "gcc", "12.2.0", "-march=x86-64-v3 -mtune=generic"),
        ("x86_64", "gcc", "12.2.0", "-march=x86-64 -mtune=generic"),
        ("neoverse_v1", "gcc", "12.2.0", "-mcpu=neoverse-v1"),
        ("aarch64", "gcc", "12.2.0", "-march=armv8-a -mtune=generic"),
        # Too old for zen3 (gcc >= 10.3): the most specific ancestor it supports.
        ("zen3", "gcc", "9.4.0", "-march=znver2 -mtune=znver2"),
        # Too old for any x86_64 level beyond the base: the family baseline.
        ("x86_64_v3", "gcc", "4.1.0", "-march=x86-64 -mtune=x86-64"),
        # A compiler archspec knows nothing about: the family baseline.
        ("haswell", "tcc", "0.9.27", "-march=x86-64 -mtune=generic"),
        ("neoverse_v1", "tcc", "0.9.27", "-march=armv8-a -mtune=generic"),
    ],
)
def test_compiler_flags(arch: str, compiler: str, version: str, flags: str) -> None:
    assert compiler_flags(arch, compiler, version) == flags


def _fake_compiler(directory: Path, name: str, script: str) -> None:
    path = directory / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_compiler_flags_detects_the_local_gcc(tmp_path: Path, monkeypatch) -> None:
    # A real executable named gcc, first on PATH, answering only -dumpfullversion.
    _fake_compiler(tmp_path, "gcc", 'if [ "$1" = -dumpfullversion ]; then echo 11.4.0; else exit 1; fi\n')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert compiler_version("gcc") == "11.4.0"
    # gcc 11.4 predates znver4, so zen4 gets archspec's znver3 + AVX-512 flag set.
    assert compiler_flags("zen4") == (
        "-march=znver3 -mtune=znver3 -mavx512f -mavx512dq -mavx512ifma -mavx512cd -mavx512bw "
        "-mavx512vl -mavx512vbmi -mavx512vbmi2 -mavx512vnni -mavx512bitalg"
    )


def test_compiler_flags_falls_back_when_the_compiler_cannot_run(tmp_path: Path, monkeypatch) -> None:
    _fake_compiler(tmp_path, "gcc", "exit 1\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert compiler_version("gcc") is None
    assert compiler_flags("zen3") == "-march=x86-64 -mtune=generic"
    assert compiler_version("no-such-compiler") is None
    assert compiler_flags("neoverse_v1", "no-such-compiler") == "-march=armv8-a -mtune=generic"


def test_compiler_flags_rejects_bad_input() -> None:
    with pytest.raises(BadInput) as err:
        compiler_flags("zen3", "gcc", "12.2.0-ubuntu1")
    assert str(err.value) == ("compiler version '12.2.0-ubuntu1' is not dot-separated digits (e.g. 12.2.0)")
    with pytest.raises(BadInput):
        compiler_flags("zen99", "gcc", "12.2.0")
