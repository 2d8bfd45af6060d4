"""The CLI contract itself: usage errors, the headless summary, global options after the verb."""

from __future__ import annotations

from pathlib import Path

from helpers import run_console, run_json, sample_tree


def test_usage_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    proc = run_console(tmp_path, "publish", "--name")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("console: error: ")
    unknown = run_console(tmp_path, "frobnicate")
    assert unknown.returncode == 2 and "invalid choice: 'frobnicate'" in unknown.stderr


def test_headless_summary_and_json_after_the_verb(site_dir: Path, tmp_path: Path) -> None:
    src = sample_tree(tmp_path / "src")
    rid = run_json(site_dir, "publish", "--name", "jetreco", "--image", f"x86_64={src}")["release_id"]
    doc = run_json(site_dir)  # no verb + --headless: the site summary
    assert doc["releases"] == 1 and doc["name"] == "site" and doc["signing_key"].startswith("sha256:")
    text = run_console(site_dir, check=0).stdout
    assert f"{rid[7:19]}  jetreco" in text and "1 release(s)" in text


def test_python_dash_m_console_is_the_console(site_dir: Path) -> None:
    """``python -m console`` runs the same entry point as the ``console`` script."""
    import os
    import subprocess
    import sys

    from helpers import REPO

    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("DEPOT_CONSOLE_SITE", None)
    run = [sys.executable, "-m", "console"]
    version = subprocess.run([*run, "--version"], capture_output=True, text=True, env=env, check=True)
    assert version.stdout.startswith("depot-console ")
    doc = subprocess.run(
        [*run, "--headless", "--site", str(site_dir), "--json"], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert doc == run_console(site_dir, "--json", check=0).stdout
    usage = subprocess.run([*run, "frobnicate"], capture_output=True, text=True, env=env)
    assert usage.returncode == 2 and usage.stderr.startswith("console: error: ")


def test_builds_status_choices_match_core() -> None:
    from console.cli import build_parser
    from core.build.jobs import STATUSES

    parser = build_parser()
    builds = parser._subparsers._group_actions[0].choices["builds"]  # type: ignore[union-attr]
    status = next(a for a in builds._actions if a.dest == "status")
    assert tuple(status.choices) == STATUSES


def test_read_only_refuses_state_changes(site_dir: Path, tmp_path: Path) -> None:
    src = sample_tree(tmp_path / "src")
    proc = run_console(site_dir, "--read-only", "publish", "--name", "n", "--image", f"x86_64={src}")
    assert proc.returncode == 2 and proc.stderr == "console: publish: refused, the console is in read-only mode\n"
    assert run_json(site_dir, "releases") == []


def test_verb_module_table_names_every_verb_where_it_is_registered() -> None:
    """``console VERB`` builds only VERB's group: the table must name the group that registers it."""
    import argparse
    import importlib

    from console.cli import common_options
    from console.verbs import MODULES, VERB_MODULE

    registered: dict[str, str] = {}
    for name in MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"console.verbs.{name}").register(sub, common_options())
        registered.update(dict.fromkeys(sub.choices, name))
    assert registered == VERB_MODULE


def test_verb_of_finds_the_verb_after_global_options() -> None:
    from console.cli import build_parser, verb_of

    assert verb_of(["--site", "show", "--json", "diff", "a", "b"]) == "diff"
    assert verb_of(["--headless", "show", "--site", "x"]) == "show"
    assert [verb_of(a) for a in (["--help", "show"], ["--version"], [], ["--json"])] == [None] * 4
    assert verb_of(["--sit", "demo", "releases"]) == "releases"  # argparse's abbreviation of --site
    one = build_parser("show")
    assert list(one._subparsers._group_actions[0].choices) == [  # type: ignore[union-attr]
        "publish",
        "releases",
        "show",
        "verify",
        "diff",
        "export",
        "gc",
    ]
    assert vars(one.parse_args(["show", "abc", "--json"])) == vars(build_parser().parse_args(["show", "abc", "--json"]))


def test_an_abbreviated_site_option_before_the_verb_still_runs_the_verb(tmp_path: Path, capsys) -> None:
    """argparse takes ``--sit DIR``: its value (here a directory named like a verb) is no verb."""
    import json as jsonlib

    from console.cli import main

    site = tmp_path / "demo"
    assert main(["--headless", "--site", str(site), "init"]) == 0
    capsys.readouterr()
    assert main(["--sit", str(site), "--json", "releases"]) == 0
    assert jsonlib.loads(capsys.readouterr().out) == []
    assert main(["--sit", "demo", "--json", "frobnicate"]) == 2  # unknown verb: the whole parser says so
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err
