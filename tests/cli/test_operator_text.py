"""Issue 18 items 8 and 11: a slower warm start reads as a regression (no ``--3%``, no ``-3% less``);
shown commands paste and run as shown (``shlex.join``); ``node env`` prepends to ``PYTHONPATH``."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from console import render
from console.verbs.node_verbs import smoke_text
from core.fleet.check import _smoke_detail
from core.node.smoke import SmokeResult

from helpers import REPO, make_tree, run_console, run_json

COMMAND = ["julia", "-e", "using JetReconstruction"]


def result(reduction: float | None, wall: float = 1.03, baseline: float | None = 1.0) -> SmokeResult:
    return SmokeResult(
        node="n1",
        channel="production",
        release="sha256:" + "ab" * 32,
        image="zen3",
        command=COMMAND,
        ok=True,
        wall_s=wall,
        exit_code=0,
        output_tail="",
        baseline_s=baseline,
        baseline_exit_code=0 if baseline is not None else None,
        reduction=reduction,
    )


def test_warm_start_words():
    assert render.warm_change(0.28) == "28% faster warm"
    assert render.warm_change(-0.03) == "3% slower warm: a regression"
    assert render.warm_change(-0.284) == "28% slower warm: a regression"
    assert render.warm_change(0.001) == "as fast as cold"
    assert render.warm_change(-0.004) == "as fast as cold"
    assert render.warm_change(None) == ""


def test_warm_start_cell_of_the_nodes_view():
    assert render.smoke_cell(True, 1.23, 0.28) == ("ok 1.2s -28%", "green")
    assert render.smoke_cell(True, 1.23, -0.03) == ("ok 1.2s +3% slower", "bold yellow")
    assert render.smoke_cell(True, 1.23, None) == ("ok 1.2s", "green")
    assert render.smoke_cell(False, 7.6, None) == ("FAIL 8s", "bold red")
    assert render.smoke_cell(None, None, None) == ("-", "dim")


def test_node_smoke_text_of_a_regression_and_its_quoted_command():
    text = smoke_text(result(-0.03))
    assert text.splitlines() == [
        "smoke ok: julia -e 'using JetReconstruction'",
        "  production: " + "ab" * 6 + " zen3 on n1; exit 0, 1.030s",
        "  cold baseline 1.000s (exit 0), 3% slower warm: a regression",
    ]
    assert shlex.split(text.splitlines()[0].removeprefix("smoke ok: ")) == COMMAND
    assert smoke_text(result(0.5, wall=0.5)).splitlines()[2] == "  cold baseline 1.000s (exit 0), 50% faster warm"
    assert "--" not in text and "-3%" not in text


def test_fleet_check_detail_of_a_regression():
    doc = {"ok": True, "wall_s": 1.03, "baseline_s": 1.0, "reduction": -0.03}
    assert _smoke_detail(doc, 0) == "smoke ok 1.03s (cold 1.00s, 3% slower warm: a regression)"
    doc = {"ok": True, "wall_s": 0.72, "baseline_s": 1.0, "reduction": 0.28}
    assert _smoke_detail(doc, 0) == "smoke ok 0.72s (cold 1.00s, 28% faster warm)"


def test_show_quotes_the_smoke_command(site_dir: Path, tmp_path: Path):
    tree = make_tree(tmp_path / "t", {"lib/python/pkg/__init__.py": "X = 1\n"})
    smoke = "python3 -c 'import pkg; print(pkg.X)'"
    rid = run_json(site_dir, "publish", "--name", "app", "--image", f"x86_64={tree}", "--smoke", smoke)["release_id"]
    shown = run_console(site_dir, "show", rid[7:15], check=0).stdout
    line = next(ln for ln in shown.splitlines() if ln.startswith("smoke: "))
    assert line == "smoke: python3 -c 'import pkg; print(pkg.X)' (timeout 600s)"


def test_node_env_prepends_to_an_existing_pythonpath(site_dir: Path, tmp_path: Path):
    root = tmp_path / "node"
    ids = []
    for v in ("1", "2"):
        tree = make_tree(tmp_path / f"t{v}", {"lib/python/pkg/__init__.py": f"X = {v}\n"})
        ids.append(run_json(site_dir, "publish", "--name", "app", "--image", f"x86_64={tree}")["release_id"])
    run_json(site_dir, "promote", ids[0], "--channel", "production", "--create")
    run_console(site_dir, "node", "hydrate", "--root", str(root), "--channel", "production", check=0)
    image1 = root / "releases" / ids[0][7:] / "x86_64" / "lib" / "python"
    env = {"PYTHONPATH": "/opt/site/lib"}
    doc = run_json(None, "node", "env", "--root", str(root), "--channel", "production", env=env)
    assert doc["PYTHONPATH"] == f"{image1}{os.pathsep}/opt/site/lib"

    # a shell that evaluated the exports before, then the channel moved: the old image is replaced
    run_json(site_dir, "promote", ids[1], "--channel", "production")
    run_console(site_dir, "node", "hydrate", "--root", str(root), "--channel", "production", check=0)
    image2 = root / "releases" / ids[1][7:] / "x86_64" / "lib" / "python"
    env = {"PYTHONPATH": f"{image1}{os.pathsep}/opt/site/lib"}
    doc = run_json(None, "node", "env", "--root", str(root), "--channel", "production", env=env)
    assert doc["PYTHONPATH"] == f"{image2}{os.pathsep}/opt/site/lib"

    # and the exports, evaluated, import the depot first and still see the site's own path
    console = f"{sys.executable} -m console.cli --headless"
    script = f'eval "$({console} node env --root {root} --channel production)"; echo "$PYTHONPATH"'
    out = subprocess.run(
        ["sh", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}/opt/site/lib"),
    )
    assert out.stdout.strip() == f"{image2}{os.pathsep}{REPO}{os.pathsep}/opt/site/lib"
