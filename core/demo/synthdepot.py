"""Realistic synthetic Julia depots for benchmarks and demos.

A real depot built for a cluster is ~500 MB in ~8k files with a very uneven mix: a few hundred large
compiled binaries (``compiled/*.ji`` and pkgimage ``.so``), shared-library artifacts with version
symlinks and executables, a couple of thousand package source files, and thousands of tiny registry
TOML files. Publishing, diffing and hydrating behave very differently on each kind, so benchmarks need
all of them, with realistic compressibility (binaries ~2-3x under zstd, not 1x and not 100x).

Layout written under ``root`` (at ``scale=1.0``: ~160 packages, ~8k files, ~500 MB)::

    packages/<Name>/<slug>/{Project.toml,README.md,LICENSE.md,src/*.jl,test/runtests.jl}
                                                   (+ Artifacts.toml for <Name>_jll packages)
    compiled/v1.10/<Name>/<slug>_<hash>.{ji,so}
    artifacts/<40 hex>/lib/libfoo.so.X.Y.Z  (+ libfoo.so.X -> libfoo.so.X.Y.Z, libfoo.so -> libfoo.so.X)
    artifacts/<40 hex>/{bin/* (0755), include/<name>/*.h, share/licenses/<Name>/LICENSE}
    registries/General/Registry.toml
    registries/General/<Letter>/<Name>/{Package,Versions,Deps,Compat}.toml
    environments/v1.10/{Project,Manifest}.toml   (Manifest format 2.0, ``[[deps.Name]]``)
    logs/, scratchspaces/                          (empty directories)

Determinism: the output (paths, modes, bytes, link targets) is a pure function of
``(scale, seed, variant)``. Every file draws from its own ``random.Random`` seeded by a string naming
the file, so changing one package never shifts the bytes of another. Binary sizes are normalized so
that their sum is ``scale * BINARY_BYTES`` whatever the draws; small scales keep floors (6 packages,
16 registry entries, 1 artifact), so ``scale=0.01`` gives ~160 files / ~5 MB in well under a second.

Variants: ``variant=N`` (N >= 1) bumps exactly 3 packages, chosen by ``Random(f"{seed}:variant:{N}")``
among the environment's plain packages (not stdlibs, not ``_jll``: artifacts stay fixed); each gets
its patch version raised by N (``stats["bumped"]`` lists name, from, to). Compared
with variant 0, exactly these things change: their ``[[deps.Name]]`` entries in Manifest.toml
(``version`` and ``git-tree-sha1``); their ``packages/<Name>/<slug>/`` directory (the old slug is gone,
a new slug holds new sources); their ``compiled/v1.10/<Name>/`` files (new names, new bytes, same
sizes). The registry, artifacts, Project.toml and every other package stay byte-identical.

Used by the benchmarks (``tests/bench/depotgen.py`` keeps the CLI:
``python tests/bench/depotgen.py DIR [--scale S] [--variant V] [--seed N]``) and by ``core.demo.site``,
so an installed console can build its demo site without the test tree.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import string
import struct
import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from core.kinds.julia import MANIFEST, PROJECT, compiled_dir, environment_dir, parse_julia_version

JULIA_VERSION = "1.10.4"
_FULL_VERSION, _SHORT_VERSION = parse_julia_version(f"julia version {JULIA_VERSION}")
JULIA_SHORT = "v" + _SHORT_VERSION
#: The depot layout the Julia kind reads (``environments/v1.10``, ``compiled/v1.10``), as store paths.
ENV_DIR = environment_dir(PurePosixPath(), _SHORT_VERSION).as_posix()
COMPILED_DIR = compiled_dir(PurePosixPath(), _SHORT_VERSION).as_posix()

# Counts and byte budgets at scale 1.0; counts and bytes scale linearly (with small floors).
NOMINAL_PACKAGES = 160
NOMINAL_REGISTRY = 1350
JLL_FRACTION = 0.19
BINARY_BYTES = 488_000_000  # compiled + artifacts; sources and registry add ~10 MB
MIN_PACKAGES = 6  # a variant bumps 3 of them
RANDOM_FRACTION = 0.25  # share of incompressible bytes in binaries; zstd -3 gives ~2.4x

STDLIBS = {
    "Artifacts": "56f22d72-fd6d-98f1-02f0-08ddc0907c33",
    "Base64": "2a0f44e3-6c83-55bd-87e4-b1978d98bd5f",
    "Dates": "ade2ca70-3891-5945-98fb-dc099432e06a",
    "Libdl": "8f399da3-3557-5675-b5ff-fb832c97cbdb",
    "LinearAlgebra": "37e2e46d-f89d-539d-b4ee-838fcccc9c8e",
    "Logging": "56ddb016-857b-54e1-b83d-db4d58db5568",
    "Markdown": "d6f4376e-aef5-505a-96c1-9c027394607a",
    "Mmap": "a63ad114-7e13-5084-954f-fe012c677804",
    "Printf": "de0858da-6303-5e67-8744-51eddeeeb8d7",
    "Random": "9a3f8284-a2c9-5f02-9a11-845980a1fd5c",
    "SHA": "ea8e919c-243c-51af-8825-aaa63cd721ce",
    "Serialization": "9e88b42a-f829-5b0c-bbe9-9e923198166b",
    "TOML": "fa267f1f-6049-4f14-aa54-33bafae1ed76",
    "UUIDs": "cf7118a7-6976-5b1a-9a39-7adc72f591a4",
    "Unicode": "4ec0a83e-493e-50e2-b9ac-8f72acf5a8f5",
}

WORDS = (
    "jet",
    "track",
    "vertex",
    "cluster",
    "hit",
    "flux",
    "energy",
    "seed",
    "graph",
    "tensor",
    "kernel",
    "mesh",
    "grid",
    "solver",
    "spline",
    "fourier",
    "wave",
    "field",
    "particle",
    "decay",
    "photon",
    "muon",
    "calo",
    "layer",
    "module",
    "sensor",
    "frame",
    "stream",
    "buffer",
    "table",
    "query",
    "index",
    "sparse",
    "dense",
    "block",
    "chunk",
    "codec",
    "parse",
    "format",
    "plot",
    "axis",
    "color",
    "theme",
    "model",
    "fit",
    "loss",
    "optim",
    "gradient",
    "sample",
    "chain",
    "markov",
    "bayes",
    "prior",
    "random",
    "stat",
    "histo",
    "bin",
    "range",
    "interval",
    "cache",
)
SYLLABLES = (
    "Jet",
    "Track",
    "Quark",
    "Flux",
    "Grid",
    "Mesh",
    "Spline",
    "Tensor",
    "Graph",
    "Stat",
    "Plot",
    "Data",
    "Frame",
    "Array",
    "Sparse",
    "Fast",
    "Lazy",
    "Static",
    "Struct",
    "Time",
    "Zip",
    "Json",
    "Arrow",
    "Parquet",
    "Cuda",
    "Metal",
    "Loop",
    "Vector",
    "Diff",
    "Auto",
    "Optim",
    "Solve",
    "Roots",
    "Poly",
    "Special",
    "Distributions",
    "Sampler",
    "Chain",
    "Markov",
    "Bayes",
    "Hep",
    "Root",
    "Geant",
    "Vertex",
    "Cluster",
    "Calo",
    "Hist",
    "Bins",
    "Units",
    "Quantity",
    "Colors",
    "Images",
    "Signal",
    "Wave",
    "Filter",
    "Kernel",
    "Cache",
)
SUFFIXES = ("", "", "", "s", "Tools", "Base", "Core", "Utils", "IO", "Interface", "Kit")
JULIA_TYPES = ("Float64", "Float32", "Int", "Int32", "UInt8", "Bool", "String", "Symbol")
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


# --- plan: what to write, as plain data ----------------------------------------------------------


@dataclass
class Package:
    name: str
    uuid: str
    version: str
    deps: list[str]
    jll: bool
    n_src: int
    ji_size: int
    so_size: int
    artifact: str = ""  # 40-hex tree sha1 for _jll packages


@dataclass
class Artifact:
    sha1: str
    package: str
    lib: str  # "libfoo"
    libversion: str  # "1.2.3"
    files: list[tuple[str, int, int]] = field(default_factory=list)  # (relpath, size, mode)


def _rng(seed: int, *parts: object) -> random.Random:
    """An independent stream per named thing: string seeds hash through sha512, stable across runs."""
    return random.Random(":".join([str(seed), *map(str, parts)]))


def _hex(seed: int, *parts: object, n: int = 40) -> str:
    return hashlib.sha256(":".join([str(seed), *map(str, parts)]).encode()).hexdigest()[:n]


def _uuid(seed: int, name: str) -> str:
    return str(uuidlib.UUID(bytes=hashlib.sha256(f"{seed}:uuid:{name}".encode()).digest()[:16], version=4))


def _slug(*parts: object) -> str:
    """A 5-character base62 slug, like Julia's ``Base.version_slug``."""
    n = int.from_bytes(hashlib.sha1(":".join(map(str, parts)).encode()).digest()[:8], "big")
    return "".join(BASE62[(n >> (6 * i)) % 62] for i in range(5))


def _tree_sha1(seed: int, name: str, version: str) -> str:
    return _hex(seed, "tree", name, version)


def _names(seed: int, count: int) -> list[str]:
    """``count`` distinct CamelCase package names, in a seed-determined order."""
    rng = _rng(seed, "names")
    seen: set[str] = set()
    names: list[str] = []
    while len(names) < count:
        parts = rng.sample(SYLLABLES, rng.choice((1, 2, 2, 2, 3)))
        name = "".join(parts) + rng.choice(SUFFIXES)
        if name not in seen and name not in STDLIBS:
            seen.add(name)
            names.append(name)
    return names


def _base_version(rng: random.Random) -> tuple[int, int, int]:
    return rng.choice((0, 0, 1, 1, 1, 2, 3)), rng.randrange(0, 20), rng.randrange(0, 12)


def _fmt(v: tuple[int, int, int]) -> str:
    return "%d.%d.%d" % v


def _lognormal(rng: random.Random, mean: float, sigma: float = 1.0, cap: float = 12.0) -> float:
    """A log-normal draw with the given mean, capped at ``cap`` times the mean."""
    return min(rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma), cap * mean)


@dataclass
class Plan:
    seed: int
    packages: dict[str, Package]  # environment packages, by name
    registry: list[str]  # every registry name (environment packages included)
    artifacts: list[Artifact]
    direct: list[str]  # Project.toml [deps]
    bumped: list[dict[str, str]]  # [{"name", "from", "to"}] for variant > 0


def make_plan(scale: float, seed: int, variant: int, registry: int | None = None) -> Plan:
    """Everything about the depot except file contents, so tests and callers can reason about it.

    ``registry`` overrides the number of registry packages (4 tiny files each): ~10,000 is a full
    unpacked General registry, the many-small-files shape of the benchmarks."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    if variant < 0:
        raise ValueError("variant must be >= 0")
    n_pkg = max(MIN_PACKAGES, round(NOMINAL_PACKAGES * scale))
    n_reg = max(n_pkg + 10, round(NOMINAL_REGISTRY * scale) if registry is None else registry)
    n_jll = max(1, round(n_pkg * JLL_FRACTION))
    names = _names(seed, n_reg)
    env = names[:n_pkg]
    jlls = [name + "_jll" for name in env[:n_jll]]
    plain = env[n_jll:]
    registry = sorted(names[n_pkg:] + jlls + plain)

    packages: dict[str, Package] = {}
    raw_binary: list[tuple[object, str, float]] = []  # (owner, attribute or index, unscaled size)
    for name in jlls + plain:
        rng = _rng(seed, "pkg", name)
        jll = name.endswith("_jll")
        earlier = [p for p in plain if p in packages]
        chosen = set(rng.sample(sorted(STDLIBS), rng.randrange(0, 5)))
        if jll:
            chosen |= {"Artifacts", "Libdl"}
        else:
            chosen |= set(rng.sample(earlier, min(len(earlier), rng.randrange(0, 7))))
            chosen |= set(rng.sample(jlls, min(len(jlls), rng.randrange(0, 3))))
        deps = sorted(chosen)
        pkg = Package(
            name=name,
            uuid=_uuid(seed, name),
            version=_fmt(_base_version(rng)),
            deps=deps,
            jll=jll,
            n_src=2 if jll else rng.randrange(4, 20),
            ji_size=0,
            so_size=0,
        )
        if jll:
            pkg.ji_size = int(_lognormal(rng, 20_000, 0.5))
            pkg.so_size = int(_lognormal(rng, 40_000, 0.5))
        else:
            raw_binary.append((pkg, "ji_size", _lognormal(rng, 600_000)))
            raw_binary.append((pkg, "so_size", _lognormal(rng, 2_200_000)))
        packages[name] = pkg

    artifacts: list[Artifact] = []
    for name in jlls:
        rng = _rng(seed, "artifact", name)
        base = name[:-4].lower()
        art = Artifact(
            sha1=_hex(seed, "artifact", name),
            package=name,
            lib="lib" + base,
            libversion=_fmt((rng.randrange(1, 9), rng.randrange(0, 30), rng.randrange(0, 10))),
        )
        packages[name].artifact = art.sha1
        raw_binary.append((art, f"lib/{art.lib}.so.{art.libversion}", _lognormal(rng, 3_000_000)))
        if rng.random() < 0.5:
            raw_binary.append((art, f"lib/{art.lib}_extra.so.{art.libversion}", _lognormal(rng, 1_000_000)))
        for b in range(rng.choice((0, 1, 1, 2, 3))):
            raw_binary.append((art, f"bin/{base}-{rng.choice(WORDS)}{b}", _lognormal(rng, 300_000)))
        for h in range(rng.randrange(1, 6)):
            art.files.append((f"include/{base}/{rng.choice(WORDS)}{h}.h", int(_lognormal(rng, 6_000, 0.7)), 0o644))
        art.files.append((f"share/licenses/{name[:-4]}/LICENSE", 1100 + rng.randrange(0, 2000), 0o644))
        artifacts.append(art)

    # Scale binary sizes so their sum hits the budget: the total is stable whatever the draws were.
    factor = BINARY_BYTES * scale / sum(size for _, _, size in raw_binary)
    for owner, key, size in raw_binary:
        scaled = max(4096, int(size * factor))
        if isinstance(owner, Package):
            setattr(owner, key, scaled)
        else:
            assert isinstance(owner, Artifact)
            owner.files.append((key, scaled, 0o755))

    rng = _rng(seed, "project")
    direct = sorted(rng.sample(plain, max(1, len(plain) // 5)))

    bumped: list[dict[str, str]] = []
    if variant:
        # Not _jll packages: a real jll bump would bring a new artifact, which variants keep fixed.
        chosen = sorted(_rng(seed, "variant", variant).sample(sorted(plain), 3))
        for name in chosen:
            old = packages[name].version
            major, minor, patch = map(int, old.split("."))
            packages[name].version = _fmt((major, minor, patch + variant))
            bumped.append({"name": name, "from": old, "to": packages[name].version})
    return Plan(seed=seed, packages=packages, registry=registry, artifacts=artifacts, direct=direct, bumped=bumped)


# --- contents ------------------------------------------------------------------------------------


def _compressible_pool(seed: int, size: int = 4 << 20) -> bytes:
    """Binary-looking but redundant bytes: symbol names, relocation-like tables, short zero runs."""
    rng = _rng(seed, "pool")
    parts: list[bytes] = []
    total = 0
    base = 0x400000
    while total < size:
        kind = rng.random()
        if kind < 0.45:
            chunk = b"jl_%s_%s_%d\0" % (rng.choice(WORDS).encode(), rng.choice(WORDS).encode(), rng.randrange(4096))
        elif kind < 0.85:
            base += 16 * rng.randrange(1, 8)
            chunk = struct.pack("<QII", base, rng.randrange(64), rng.choice((0, 0, 1, 7, 8, 0x25)))
        else:
            chunk = bytes(rng.randrange(4, 96))
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)[:size]


def _binary(rng: random.Random, size: int, pool: bytes, magic: bytes) -> bytes:
    """``size`` bytes alternating fresh random runs (incompressible) with slices of ``pool``."""
    parts = [magic]
    total = len(magic)
    while total < size:
        n = min(size - total, rng.randrange(1024, 48 * 1024))
        if rng.random() < RANDOM_FRACTION:
            parts.append(rng.randbytes(n))
        else:
            off = rng.randrange(len(pool) - n)
            parts.append(pool[off : off + n])
        total += n
    return b"".join(parts)[:size]


ELF_MAGIC = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x03\x00\x3e\x00\x01\x00\x00\x00"
JI_MAGIC = b"\xfbjli\r\n\x1a\n\x0c\x00" + JULIA_VERSION.encode() + b"\0"


def _ident(rng: random.Random) -> str:
    return "_".join(rng.sample(WORDS, rng.choice((1, 2, 2, 3))))


def _camel(rng: random.Random) -> str:
    return "".join(w.capitalize() for w in rng.sample(WORDS, rng.choice((1, 2, 2, 3))))


def _julia_block(rng: random.Random) -> str:
    """One top-level Julia definition: documented function, struct, or method table."""
    kind = rng.random()
    fn, arg, T = _ident(rng), rng.choice(WORDS), rng.choice(JULIA_TYPES)
    if kind < 0.55:
        body = "\n".join(
            f"        acc += {arg}[i] * {rng.random():.4f}"
            if j % 2 == 0
            else f"        {rng.choice(WORDS)}_{j} = {rng.choice(('sqrt', 'abs', 'exp', 'log1p'))}(acc + {j})"
            for j in range(rng.randrange(1, 8))
        )
        return (
            f'"""\n    {fn}({arg}::AbstractVector{{T}}, n::Int) where {{T<:Real}}\n\n'
            f"Compute the {rng.choice(WORDS)} {rng.choice(WORDS)} of `{arg}` over `n` "
            f'{rng.choice(WORDS)}s.\n"""\n'
            f"function {fn}({arg}::AbstractVector{{T}}, n::Int) where {{T<:Real}}\n"
            f"    acc = zero(T)\n    @inbounds for i in eachindex({arg})\n{body}\n    end\n"
            f"    return acc / n\nend\n\n"
        )
    if kind < 0.8:
        fields = "\n".join(f"    {rng.choice(WORDS)}{k}::{rng.choice(JULIA_TYPES)}" for k in range(rng.randrange(2, 7)))
        name = _camel(rng)
        return (
            f"struct {name}{{T}} <: Abstract{_camel(rng)}\n{fields}\n    data::Vector{{T}}\nend\n\n"
            f"Base.length(x::{name}) = length(x.data)\n"
            f"Base.getindex(x::{name}, i::Int) = x.data[i]\n\n"
        )
    return (
        f"{fn}(x::{T}) = {fn}(convert(Float64, x))\n"
        f"{fn}(x::Float64) = x < {rng.randrange(100)} ? x^2 : log(x)\n"
        f"@inline {fn}!(out, x) = (out .= {fn}.(x); out)\n\n"
    )


def _julia_file(rng: random.Random, header: str, target: int) -> bytes:
    parts = [header]
    total = len(header)
    while total < target:
        block = _julia_block(rng)
        parts.append(block)
        total += len(block)
    return "".join(parts).encode()


def _package_files(plan: Plan, pkg: Package) -> dict[str, bytes]:
    """Relative path -> bytes for one package source directory."""
    rng = _rng(plan.seed, "src", pkg.name, pkg.version)
    deps = "".join(f'{d} = "{STDLIBS.get(d) or plan.packages[d].uuid}"\n' for d in pkg.deps)
    compat = "".join(f'{d} = "{plan.packages[d].version.split(".")[0]}"\n' for d in pkg.deps if d in plan.packages)
    files: dict[str, bytes] = {
        "Project.toml": (
            f'name = "{pkg.name}"\nuuid = "{pkg.uuid}"\n'
            f'authors = ["{rng.choice(WORDS).capitalize()} Developers"]\n'
            f'version = "{pkg.version}"\n\n[deps]\n{deps}\n'
            f'[compat]\n{compat}julia = "1.6"\n'
        ).encode(),
        "README.md": (f"# {pkg.name}.jl\n\n" + f"{pkg.name} provides {rng.choice(WORDS)} tools.\n" * 8).encode(),
        "LICENSE.md": (
            f"MIT License\n\nCopyright (c) {2015 + rng.randrange(10)} {pkg.name} contributors\n\n"
            + "Permission is hereby granted, free of charge, to any person obtaining a copy.\n" * 12
        ).encode(),
        "test/runtests.jl": _julia_file(rng, f"using {pkg.name}\nusing Test\n\n", 1500),
    }
    others = [f"src/{_ident(rng)}_{k}.jl" for k in range(pkg.n_src - 1)]
    includes = "".join(f'include("{p[4:]}")\n' for p in others)
    usings = "".join(f"using {d}\n" for d in pkg.deps)
    header = f"module {pkg.name}\n\n{usings}\n{includes}\nexport {_ident(rng)}, {_ident(rng)}\n\n"
    files[f"src/{pkg.name}.jl"] = _julia_file(rng, header, 1500) + b"\nend # module\n"
    for path in others:
        files[path] = _julia_file(rng, f"# {path}\n\n", int(_lognormal(rng, 6000, 0.8)))
    if pkg.jll:
        files["Artifacts.toml"] = (
            f'[[{pkg.name[:-4]}]]\narch = "x86_64"\ngit-tree-sha1 = "{pkg.artifact}"\nlibc = "glibc"\n'
            f'os = "linux"\n\n    [[{pkg.name[:-4]}.download]]\n    sha256 = "{_hex(plan.seed, "dl", pkg.name, n=64)}"\n'
            f'    url = "https://github.com/JuliaBinaryWrappers/{pkg.name}.jl/releases/download/'
            f'{pkg.name}-v{pkg.version}/{pkg.name[:-4]}.v{pkg.version}.x86_64-linux-gnu.tar.gz"\n'
        ).encode()
    return files


def _registry_files(plan: Plan, name: str) -> dict[str, bytes]:
    rng = _rng(plan.seed, "reg", name)
    pkg = plan.packages.get(name)
    # Registry versions are those of variant 0: bump the patch back down for bumped packages.
    latest = next((b["from"] for b in plan.bumped if b["name"] == name), pkg.version) if pkg else None
    major, minor, patch = map(int, latest.split(".")) if latest else _base_version(rng)
    versions = sorted(
        {(major, minor, p) for p in range(patch + 1)} | {(major, m, 0) for m in range(minor + 1)}, reverse=True
    )[: rng.randrange(1, 12)]
    uid = pkg.uuid if pkg else _uuid(plan.seed, name)
    vers = "".join(
        f'["{_fmt(v)}"]\ngit-tree-sha1 = "{_tree_sha1(plan.seed, name, _fmt(v))}"\n\n' for v in sorted(versions)
    )
    deps = rng.sample(sorted(STDLIBS), rng.randrange(0, 4))
    oldest = _fmt(min(versions))
    return {
        "Package.toml": (
            f'name = "{name}"\nuuid = "{uid}"\nrepo = "https://github.com/{_camel(rng)}/{name}.jl.git"\n'
        ).encode(),
        "Versions.toml": vers.encode(),
        "Deps.toml": (f'["{oldest}-{major}"]\n' + "".join(f'{d} = "{STDLIBS[d]}"\n' for d in deps)).encode(),
        "Compat.toml": f'["{oldest}-{major}"]\njulia = "1.{rng.randrange(0, 10)}.0-1"\n'.encode(),
    }


def _manifest(plan: Plan) -> bytes:
    entries: dict[str, str] = {}
    for name, pkg in plan.packages.items():
        deps = f"deps = {json.dumps(pkg.deps)}\n" if pkg.deps else ""
        entries[name] = (
            f"[[deps.{name}]]\n{deps}"
            f'git-tree-sha1 = "{_tree_sha1(plan.seed, name, pkg.version)}"\n'
            f'uuid = "{pkg.uuid}"\nversion = "{pkg.version}"\n'
        )
    for name, uid in STDLIBS.items():
        entries[name] = f'[[deps.{name}]]\nuuid = "{uid}"\n'
    head = (
        "# This file is machine-generated - editing it directly is not advised\n\n"
        f'julia_version = "{JULIA_VERSION}"\nmanifest_format = "2.0"\n'
        f'project_hash = "{_hex(plan.seed, "project")}"\n\n'
    )
    return (head + "\n".join(entries[k] for k in sorted(entries))).encode()


def _project(plan: Plan) -> bytes:
    return ("[deps]\n" + "".join(f'{d} = "{plan.packages[d].uuid}"\n' for d in plan.direct)).encode()


def _registry_toml(plan: Plan) -> bytes:
    lines = "".join(
        f'{_uuid(plan.seed, n)} = {{ name = "{n}", path = "{n[0].upper()}/{n}" }}\n'
        for n in sorted(plan.registry, key=lambda n: _uuid(plan.seed, n))
    )
    return (
        'name = "General"\nuuid = "23338594-aafe-5451-b93e-139f81909106"\n'
        'repo = "https://github.com/JuliaRegistries/General.git"\n\n'
        'description = """\nOfficial general Julia package registry.\n"""\n\n'
        f"[packages]\n{lines}"
    ).encode()


# --- writing -------------------------------------------------------------------------------------


class _Writer:
    """Writes files and links with explicit modes (umask-independent) and counts them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = 0
        self.links = 0
        self.bytes = 0
        self.dirs: set[Path] = set()

    def mkdir(self, rel: str) -> Path:
        path = self.root / rel
        if path not in self.dirs:
            path.mkdir(parents=True, exist_ok=True)
            # parents=True ignores the mode; fix every level below root explicitly.
            for parent in [path, *path.parents]:
                if parent == self.root or self.root not in parent.parents:
                    break
                if parent in self.dirs:
                    break
                os.chmod(parent, 0o755)
                self.dirs.add(parent)
        return path

    def file(self, rel: str, data: bytes, mode: int = 0o644) -> None:
        parent, _, base = rel.rpartition("/")
        path = self.mkdir(parent) / base if parent else self.root / base
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        self.files += 1
        self.bytes += len(data)

    def link(self, rel: str, target: str) -> None:
        parent, _, base = rel.rpartition("/")
        os.symlink(target, self.mkdir(parent) / base)
        self.links += 1


def generate(root: Path, scale: float = 1.0, seed: int = 0, variant: int = 0, registry: int | None = None) -> dict:
    """Write a synthetic depot under ``root`` (absent or empty); return its stats.

    Stats: ``files`` (regular files), ``links``, ``bytes`` (sum of regular file sizes), ``packages``
    (environment packages, stdlibs excluded), ``bumped`` (``[{"name", "from", "to"}]``, empty for
    variant 0).
    """
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty")
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    plan = make_plan(scale, seed, variant, registry)
    pool = _compressible_pool(seed)
    w = _Writer(root)

    for pkg in plan.packages.values():
        slug = _slug(pkg.uuid, _tree_sha1(seed, pkg.name, pkg.version))
        for rel, data in _package_files(plan, pkg).items():
            w.file(f"packages/{pkg.name}/{slug}/{rel}", data)
        cslug = f"{_slug('compiled', pkg.uuid)}_{_slug('build', pkg.uuid, pkg.version)}"
        rng = _rng(seed, "compiled", pkg.name, pkg.version)
        w.file(f"{COMPILED_DIR}/{pkg.name}/{cslug}.ji", _binary(rng, pkg.ji_size, pool, JI_MAGIC))
        w.file(f"{COMPILED_DIR}/{pkg.name}/{cslug}.so", _binary(rng, pkg.so_size, pool, ELF_MAGIC), 0o755)

    for art in plan.artifacts:
        rng = _rng(seed, "artifact-bytes", art.sha1)
        for rel, size, mode in art.files:
            if mode == 0o755:
                data = _binary(rng, size, pool, ELF_MAGIC)
            else:
                text = f"/* {rel} */\n" + "".join(
                    f"#define {_ident(rng).upper()} {rng.randrange(1 << 16)}\n" for _ in range(size // 24)
                )
                data = text.encode()[:size]
            w.file(f"artifacts/{art.sha1}/{rel}", data, mode)
        for rel, _, _ in art.files:
            if rel.startswith("lib/") and rel.endswith(art.libversion):
                soname = rel[4 : -len(art.libversion)] + art.libversion.split(".")[0]
                w.link(f"artifacts/{art.sha1}/lib/{soname}", rel[4:])
                w.link(f"artifacts/{art.sha1}/lib/{soname.rsplit('.', 1)[0]}", soname)

    w.file("registries/General/Registry.toml", _registry_toml(plan))
    for name in plan.registry:
        for rel, data in _registry_files(plan, name).items():
            w.file(f"registries/General/{name[0].upper()}/{name}/{rel}", data)

    w.file(f"{ENV_DIR}/{PROJECT}", _project(plan))
    w.file(f"{ENV_DIR}/{MANIFEST}", _manifest(plan))
    w.mkdir("logs")
    w.mkdir("scratchspaces")
    return {"files": w.files, "links": w.links, "bytes": w.bytes, "packages": len(plan.packages), "bumped": plan.bumped}
