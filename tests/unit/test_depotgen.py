"""tests/bench/depotgen.py: deterministic synthetic Julia depots (tiny scale)."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

import pytest
import zstandard
from bench.depotgen import generate, main

from core.kinds.packages import find_julia_environment, julia_manifest_packages

SCALE = 0.01


def tree_fingerprint(root: Path) -> dict[str, str]:
    """Relative path -> "type mode content-sha256|link-target" for every entry under root."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            mode = oct(stat.S_IMODE(st.st_mode))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = f"link {os.readlink(path)}"
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = f"dir {mode}"
            else:
                out[rel] = f"file {mode} {hashlib.sha256(path.read_bytes()).hexdigest()}"
    return out


@pytest.fixture(scope="module")
def depots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    base = tmp_path_factory.mktemp("depots")
    return {
        key: (base / key, generate(base / key, scale=SCALE, seed=seed, variant=variant))
        for key, seed, variant in (("a", 0, 0), ("b", 0, 0), ("v1", 0, 1), ("seed1", 1, 0))
    }


def test_same_inputs_give_identical_trees(depots: dict[str, tuple[Path, dict]]) -> None:
    (a, stats_a), (b, stats_b) = depots["a"], depots["b"]
    fingerprint = tree_fingerprint(a)
    assert fingerprint == tree_fingerprint(b)
    assert stats_a == stats_b
    assert fingerprint != tree_fingerprint(depots["seed1"][0])


def test_stats_match_the_tree(depots: dict[str, tuple[Path, dict]]) -> None:
    root, stats = depots["a"]
    files = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    links = [p for p in root.rglob("*") if p.is_symlink()]
    assert stats["files"] == len(files)
    assert stats["links"] == len(links)
    assert stats["bytes"] == sum(p.stat().st_size for p in files)
    assert stats["packages"] == 6
    assert stats["bumped"] == []


def test_layout(depots: dict[str, tuple[Path, dict]]) -> None:
    root, _ = depots["a"]
    sources = sorted(root.glob("packages/*/*/src/*.jl"))
    assert len(sources) >= 12
    for pkgdir in root.glob("packages/*/*"):
        name = pkgdir.parent.name
        assert re.fullmatch(r"[0-9A-Za-z]{5}", pkgdir.name)
        assert f'name = "{name}"' in (pkgdir / "Project.toml").read_text()
        assert (pkgdir / "src" / f"{name}.jl").read_text().startswith(f"module {name}\n")
        compiled = sorted(p.suffix for p in (root / "compiled" / "v1.10" / name).iterdir())
        assert compiled == [".ji", ".so"]
    artifacts = list((root / "artifacts").iterdir())
    assert artifacts and all(re.fullmatch(r"[0-9a-f]{40}", a.name) for a in artifacts)
    for art in artifacts:
        real = [p for p in (art / "lib").iterdir() if not p.is_symlink()]
        assert real and all(re.search(r"\.so\.\d+\.\d+\.\d+$", p.name) for p in real)
        for lib in real:
            assert lib.stat().st_mode & 0o777 == 0o755
    executables = list(root.glob("artifacts/*/bin/*"))
    assert all(p.stat().st_mode & 0o777 == 0o755 for p in executables)
    registry = [p for p in root.glob("registries/General/*/*") if p.is_dir()]
    assert len(registry) >= 16
    for entry in registry:
        assert entry.parent.name == entry.name[0].upper()
        assert sorted(p.name for p in entry.iterdir()) == ["Compat.toml", "Deps.toml", "Package.toml", "Versions.toml"]
    assert (root / "environments" / "v1.10" / "Project.toml").is_file()
    assert (root / "logs").is_dir() and list((root / "logs").iterdir()) == []


def test_symlinks_are_relative_version_chains_inside_the_tree(depots: dict[str, tuple[Path, dict]]) -> None:
    root, stats = depots["a"]
    links = [p for p in root.rglob("*") if p.is_symlink()]
    assert len(links) == stats["links"] >= 2
    for link in links:
        target = os.readlink(link)
        assert not target.startswith("/") and "/" not in target
        resolved = link.resolve()
        assert resolved.is_file() and root.resolve() in resolved.parents
        if link.name.endswith(".so"):
            assert re.fullmatch(re.escape(link.name) + r"\.\d+", target)
        else:
            assert re.fullmatch(re.escape(link.name) + r"\.\d+\.\d+", target)


def test_binaries_compress_realistically(depots: dict[str, tuple[Path, dict]]) -> None:
    root, _ = depots["a"]
    compressor = zstandard.ZstdCompressor(level=3)
    raw = packed = 0
    for path in list(root.glob("compiled/v1.10/*/*")) + list(root.glob("artifacts/*/lib/*.so.*.*.*")):
        data = path.read_bytes()
        raw += len(data)
        packed += len(compressor.compress(data))
    assert 2.0 < raw / packed < 3.0


def test_manifest_parses(depots: dict[str, tuple[Path, dict]]) -> None:
    root, _ = depots["a"]
    manifest = find_julia_environment(root)
    assert manifest == root / "environments" / "v1.10" / "Manifest.toml"
    packages = julia_manifest_packages(manifest.read_text())
    versioned = {p["name"]: p["version"] for p in packages if p["version"]}
    assert sorted(versioned) == sorted(p.name for p in (root / "packages").iterdir())
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in versioned.values())
    assert {"Dates", "LinearAlgebra"} <= {p["name"] for p in packages if p["version"] == ""}


def test_variant_bumps_exactly_three_packages(depots: dict[str, tuple[Path, dict]]) -> None:
    (a, _), (v1, stats) = depots["a"], depots["v1"]
    before = {p["name"]: p for p in julia_manifest_packages((a / "environments/v1.10/Manifest.toml").read_text())}
    after = {p["name"]: p for p in julia_manifest_packages((v1 / "environments/v1.10/Manifest.toml").read_text())}
    assert before.keys() == after.keys()
    changed = sorted(n for n in before if before[n] != after[n])
    assert len(changed) == 3
    bumps = [{"name": n, "from": before[n]["version"], "to": after[n]["version"]} for n in changed]
    assert bumps == stats["bumped"]
    for bump in bumps:
        major, minor, patch = bump["from"].split(".")
        assert bump["to"] == f"{major}.{minor}.{int(patch) + 1}"

    fa, fv = tree_fingerprint(a), tree_fingerprint(v1)
    differing = {p for p in fa.keys() | fv.keys() if fa.get(p) != fv.get(p)}
    allowed = tuple(f"{top}/{n}/" for n in changed for top in ("packages", "compiled/v1.10"))
    assert "environments/v1.10/Manifest.toml" in differing
    assert all(p.startswith(allowed) for p in differing - {"environments/v1.10/Manifest.toml"})
    for name in changed:
        old_slugs = [p.name for p in (a / "packages" / name).iterdir()]
        new_slugs = [p.name for p in (v1 / "packages" / name).iterdir()]
        assert len(old_slugs) == len(new_slugs) == 1 and old_slugs != new_slugs
        old_compiled = sorted(p.name for p in (a / "compiled/v1.10" / name).iterdir())
        new_compiled = sorted(p.name for p in (v1 / "compiled/v1.10" / name).iterdir())
        assert len(new_compiled) == 2 and set(old_compiled).isdisjoint(new_compiled)


def test_refuses_non_empty_dir_and_cli_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x").write_text("x")
    with pytest.raises(FileExistsError):
        generate(tmp_path, scale=SCALE)
    assert main([str(tmp_path), "--scale", str(SCALE)]) == 2
    assert capsys.readouterr().err == f"depotgen: {tmp_path} is not empty\n"
    assert main([str(tmp_path / "d"), "--scale", "0.005", "--variant", "2", "--seed", "3"]) == 0
    assert '"packages": 6' in capsys.readouterr().out
