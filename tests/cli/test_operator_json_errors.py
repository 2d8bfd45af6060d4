"""Issue 18 item 4: with ``--json`` every verb prints one JSON document on stdout, usage errors
included (``{"error": …, "exit_code": 2}``, the same line on stderr); ``refresh --channel nope
--json`` is the error object, not a list."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from console.cli import build_parser, main

from helpers import init_site, make_tree, run_console, run_json


def verb_paths() -> list[list[str]]:
    """Every verb and sub-verb the parser knows (``['keys', 'revoke']``, …)."""
    out: list[list[str]] = []

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    out.append([*path, name])
                    walk(sub, [*path, name])

    walk(build_parser(), [])
    return out


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_every_verb_has_a_path():
    paths = verb_paths()
    assert ["promote"] in paths and ["keys", "revoke"] in paths and ["channels", "create"] in paths
    assert len(paths) > 30


@pytest.mark.parametrize("path", verb_paths(), ids=" ".join)
def test_an_unknown_option_with_json_is_one_error_document(capsys, tmp_path: Path, path: list[str]):
    code, out, err = run(capsys, "--site", str(tmp_path), *path, "--no-such-option", "--json")
    assert code == 2
    doc = json.loads(out)
    assert set(doc) == {"error", "exit_code"} and doc["exit_code"] == 2
    assert doc["error"].endswith(" --help')")  # the message, and where the usage is
    assert err == f"console: error: {doc['error']}\n"


def test_usage_errors_are_exact_documents(capsys, tmp_path: Path):
    site = str(tmp_path)
    cases = {
        ("promote", "--json"): "the following arguments are required: ID, --channel (see 'console promote --help')",
        ("--json", "rollback", "--channel", "p", "--to", "ab12", "--steps", "1"): (
            "argument --steps: not allowed with argument --to (see 'console rollback --help')"
        ),
        ("keys", "--json"): "the following arguments are required: ACTION (see 'console keys --help')",
        ("rollback", "--channel", "p", "--steps", "two", "--json"): (
            "argument --steps: invalid int value: 'two' (see 'console rollback --help')"
        ),
    }
    for argv, error in cases.items():
        code, out, err = run(capsys, "--site", site, *argv)
        assert (code, json.loads(out), err) == (2, {"error": error, "exit_code": 2}, f"console: error: {error}\n")


def test_an_unknown_verb_with_json(capsys, tmp_path: Path):
    code, out, err = run(capsys, "--json", "nosuch")
    doc = json.loads(out)
    assert code == 2 and doc["exit_code"] == 2
    assert doc["error"].startswith("argument VERB: invalid choice: 'nosuch' (choose from 'init', ")
    assert err == f"console: error: {doc['error']}\n"


def test_without_json_usage_errors_print_nothing_on_stdout(capsys, tmp_path: Path):
    code, out, err = run(capsys, "--site", str(tmp_path), "promote")
    assert (code, out) == (2, "")
    assert err == "console: error: the following arguments are required: ID, --channel (see 'console promote --help')\n"


def test_a_verb_group_without_its_sub_verb_with_json(capsys, tmp_path: Path):
    """``console node --json``: the group needs a sub-verb."""
    code, out, err = run(capsys, "--site", str(tmp_path), "node", "--json")
    error = "the following arguments are required: SUBVERB (see 'console node --help')"
    assert (code, json.loads(out), err) == (2, {"error": error, "exit_code": 2}, f"console: error: {error}\n")


def test_refresh_of_an_unknown_channel_is_the_error_object(tmp_path: Path):
    site = init_site(tmp_path / "site")
    tree = make_tree(tmp_path / "t", {"a.py": "a"})
    rid = run_json(site, "publish", "--name", "app", "--image", f"x86_64={tree}")["release_id"]
    run_json(site, "promote", rid, "--channel", "production", "--create")
    proc = run_console(site, "refresh", "--channel", "nope", "--json", check=2)
    assert json.loads(proc.stdout) == {"error": "unknown channel 'nope' (known: production)", "exit_code": 2}
    assert proc.stderr == "console: unknown channel 'nope' (known: production)\n"
    # nothing was refreshed, not even the channel that exists
    assert [h["version"] for h in run_json(site, "history", "--channel", "production")] == [1]
    doc = run_json(site, "refresh", "--channel", "production")
    assert [(d["channel"], d["version"], d["action"]) for d in doc] == [("production", 2, "refresh")]
