"""Untrusted strings never drive the terminal (issue 12, item 6).

Release names and labels, promote reasons, ids typed on the command line and build output reach
the CLI's text output inert: escape sequences and control characters are shown as ``\\x1b``-style
escapes, a newline inside a value cannot forge a table row, and ``--json`` keeps the exact strings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import make_tree, run_console, run_json

#: Shapes of hostile text: set the terminal title, clear the screen, forge a row, hide text
#: with carriage return, reorder it with a bidi override, ring the bell through C1 CSI.
HOSTILE = [
    "x\x1b]0;owned\x07",
    "x\x1b[2J\x1b[H",
    "x\nsha256:forged  row",
    "x\rhidden",
    "x\u202egnp.exe",
    "x\x9b31m",
]


def _raw_controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F or c == "\u202e"]


@pytest.fixture
def hostile_site(site_dir: Path, tmp_path: Path) -> tuple[Path, str]:
    tree = make_tree(tmp_path / "tree", {"a.txt": b"a\n"})
    label = "".join(HOSTILE)
    rid = run_json(site_dir, "publish", "--name", "demo", "--image", f"x86_64={tree}", "--label", label)["release_id"]
    run_console(site_dir, "promote", rid, "--channel", "production", "--create", "--reason", label, check=0)
    return site_dir, rid


@pytest.mark.parametrize(
    "argv",
    [["releases"], ["show", "{rid}"], ["history", "--channel", "production"], ["channels"], []],
)
def test_text_output_carries_no_raw_control_character(hostile_site: tuple[Path, str], argv: list[str]) -> None:
    site, rid = hostile_site
    proc = run_console(site, *[a.format(rid=rid) for a in argv], check=0)
    assert _raw_controls(proc.stdout) == [] and _raw_controls(proc.stderr) == []
    assert "forged" not in "".join(line for line in proc.stdout.splitlines() if line.startswith("sha256:forged"))
    if argv[:1] in (["releases"], ["show"]):
        assert "x\\x1b]0;owned\\x07" in proc.stdout, proc.stdout


def test_a_newline_in_a_label_cannot_forge_a_table_row(hostile_site: tuple[Path, str]) -> None:
    site, _ = hostile_site
    lines = run_console(site, "releases", check=0).stdout.splitlines()
    assert len(lines) == 2, lines  # the header and the one release
    assert "x\\x0asha256:forged  row" in lines[1]


def test_json_keeps_the_exact_strings(hostile_site: tuple[Path, str]) -> None:
    site, rid = hostile_site
    doc = run_json(site, "show", rid)
    assert doc["label"] == "".join(HOSTILE)  # type: ignore[index]


@pytest.mark.parametrize("text", HOSTILE)
def test_an_error_quoting_hostile_input_is_one_inert_line(site_dir: Path, text: str) -> None:
    proc = run_console(site_dir, "show", text, check=2)
    assert len(proc.stderr.splitlines()) == 1 and _raw_controls(proc.stderr) == [], repr(proc.stderr)
    assert json.loads(run_console(site_dir, "show", text, "--json", check=2).stdout)["exit_code"] == 2
