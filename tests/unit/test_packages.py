"""core.kinds.packages: package lists from Julia Manifest.toml v2 and pinned pip requirements."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import BadInput
from core.kinds.packages import (
    find_julia_environment,
    julia_manifest_packages,
    normalize_name,
    requirements_packages,
)

MANIFEST_V2 = """\
# This file is machine-generated - editing it directly is not advised

julia_version = "1.10.4"
manifest_format = "2.0"
project_hash = "0123456789abcdef0123456789abcdef01234567"

[[deps.JSON]]
deps = ["Dates", "Mmap", "Parsers", "Unicode"]
git-tree-sha1 = "31e996f0a15c7b280ba9f76636b3ff9e2ae58c9a"
uuid = "682c06a0-de6a-54ab-a142-c8b1cf79cde6"
version = "0.21.4"

[[deps.Dates]]
deps = ["Printf"]
uuid = "ade2ca70-3891-5945-98fb-dc099432e06a"

[[deps.Parsers]]
deps = ["Dates", "PrecompileTools", "UUIDs"]
git-tree-sha1 = "8489905bcdbcfac64d1daa51ca07c0d8f0283821"
uuid = "69de0a69-1ddd-5017-9359-2bf0b02dc9f0"
version = "2.8.1"

[[deps.Twin]]
uuid = "bbbbbbbb-0000-0000-0000-000000000002"
version = "1.0.0"

[[deps.Twin]]
uuid = "aaaaaaaa-0000-0000-0000-000000000001"
version = "2.0.0"
"""

MANIFEST_V1 = """\
[[JSON]]
deps = ["Dates", "Mmap", "Parsers", "Unicode"]
git-tree-sha1 = "31e996f0a15c7b280ba9f76636b3ff9e2ae58c9a"
uuid = "682c06a0-de6a-54ab-a142-c8b1cf79cde6"
version = "0.21.4"
"""


def test_manifest_v2_sorted_with_stdlib_version_empty() -> None:
    assert julia_manifest_packages(MANIFEST_V2) == [
        {"name": "Dates", "uuid": "ade2ca70-3891-5945-98fb-dc099432e06a", "version": ""},
        {"name": "JSON", "uuid": "682c06a0-de6a-54ab-a142-c8b1cf79cde6", "version": "0.21.4"},
        {"name": "Parsers", "uuid": "69de0a69-1ddd-5017-9359-2bf0b02dc9f0", "version": "2.8.1"},
        {"name": "Twin", "uuid": "aaaaaaaa-0000-0000-0000-000000000001", "version": "2.0.0"},
        {"name": "Twin", "uuid": "bbbbbbbb-0000-0000-0000-000000000002", "version": "1.0.0"},
    ]


def test_manifest_without_deps_is_empty() -> None:
    assert julia_manifest_packages('julia_version = "1.10.4"\nmanifest_format = "2.0"\n') == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            MANIFEST_V1,
            "Manifest.toml is in format 1 (top-level [[Name]] tables); "
            'resolve it with Julia >= 1.7 to get manifest_format = "2.0"',
        ),
        ("[[deps.X]\nuuid = 1", "Manifest.toml is not valid TOML: "),
        ('manifest_format = "3.0"\n', "Manifest.toml has unsupported manifest_format '3.0' (expected \"2.x\")"),
        ('julia_version = "1.10.4"\n', "Manifest.toml has no manifest_format field"),
        ('manifest_format = "2.0"\n[[deps.X]]\nversion = "1.0.0"\n', "Manifest.toml: deps.X has no uuid string"),
        ('manifest_format = "2.0"\n[[deps.X]]\nuuid = "nope"\n', "Manifest.toml: deps.X has a malformed uuid 'nope'"),
        (
            'manifest_format = "2.0"\n[[deps.X]]\nuuid = "aaaaaaaa-0000-0000-0000-000000000001"\nversion = 1\n',
            "Manifest.toml: deps.X has a non-string version 1",
        ),
        ('manifest_format = "2.0"\ndeps = 3\n', "Manifest.toml: 'deps' must be a table of [[deps.Name]] entries"),
        (
            'manifest_format = "2.0"\n[deps.X]\nuuid = "aaaaaaaa-0000-0000-0000-000000000001"\n',
            "Manifest.toml: deps.X must be an array of tables ([[deps.X]])",
        ),
    ],
)
def test_manifest_rejections(text: str, message: str) -> None:
    with pytest.raises(BadInput) as info:
        julia_manifest_packages(text)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2


def test_find_julia_environment_picks_highest_numeric_version(tmp_path: Path) -> None:
    assert find_julia_environment(tmp_path) is None
    for name in ("v1.9", "v1.10", "v1.2", "shared", "v1.11"):
        (tmp_path / "environments" / name).mkdir(parents=True)
    for name in ("v1.9", "v1.10", "v1.2", "shared"):
        (tmp_path / "environments" / name / "Manifest.toml").write_text(MANIFEST_V2)
    # v1.11 has no Manifest.toml, "shared" is not a version: v1.10 wins over v1.9 and v1.2.
    assert find_julia_environment(tmp_path) == tmp_path / "environments" / "v1.10" / "Manifest.toml"


REQUIREMENTS = """\
# pinned by pip-compile
--index-url https://pypi.org/simple
--find-links /srv/wheels
--no-index

NumPy==1.26.4  # the array
zope.Interface==6.2
Foo_Bar[extra1,extra2]==0.1.0rc1 ; python_version >= "3.8"
requests==2.31.0 \\
    --hash=sha256:58cd2187c01e70e6e26505bca751777aa9f2ee0b7f4300988b709f44e013003f \\
    --hash=sha256:942c5a758f98d790eaed1a29cb6eefc7ffb0d1cf7af05c3d2791656dbd6ad1e1
numpy==1.26.4
"""


def test_requirements_pinned_and_normalized() -> None:
    assert requirements_packages(REQUIREMENTS) == [
        {"name": "foo-bar", "uuid": "", "version": "0.1.0rc1"},
        {"name": "numpy", "uuid": "", "version": "1.26.4"},
        {"name": "requests", "uuid": "", "version": "2.31.0"},
        {"name": "zope-interface", "uuid": "", "version": "6.2"},
    ]


def test_requirements_empty() -> None:
    assert requirements_packages("\n# nothing\n\n") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("numpy==1.26.4\nscipy>=1.11\n", "requirements line 2: not pinned as name==version: scipy>=1.11"),
        ("scipy\n", "requirements line 1: not pinned as name==version: scipy"),
        ("scipy==1.*\n", "requirements line 1: not pinned as name==version: scipy==1.*"),
        (
            "foo @ https://example.org/foo-1.0.whl\n",
            "requirements line 1: not pinned as name==version: foo @ https://example.org/foo-1.0.whl",
        ),
        ("-r base.txt\n", "requirements line 1: -r is not supported (list every package pinned with ==): -r base.txt"),
        ("-e .\n", "requirements line 1: -e is not supported (list every package pinned with ==): -e ."),
        ("--frobnicate\n", "requirements line 1: unknown option --frobnicate"),
        ("Foo==1.0\nfoo==2.0\n", "requirements line 2: foo pinned twice (1.0 and 2.0)"),
    ],
)
def test_requirements_rejections(text: str, message: str) -> None:
    with pytest.raises(BadInput) as info:
        requirements_packages(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [("Foo_Bar", "foo-bar"), ("zope.interface", "zope-interface"), ("a--b__c..d", "a-b-c-d"), ("x", "x")],
)
def test_normalize_name(raw: str, normalized: str) -> None:
    assert normalize_name(raw) == normalized
