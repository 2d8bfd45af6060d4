"""Issue 18 item 1: the README's commands work on a fresh machine, and the design it points to is
in the repository (every link resolves, anchors included)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(md: str) -> set[str]:
    """GitHub's anchors for the headings of ``md``."""
    out = set()
    for line in md.splitlines():
        if m := re.match(r"#{1,6} (.*)", line):
            text = m.group(1).strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return out


def sh_blocks(md: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", md, re.S)


def test_test_command_installs_the_test_extras():
    """The README's test block installs what pytest and the test suite import, then runs pytest."""
    readme = (ROOT / "README.md").read_text()
    block = next(b for b in sh_blocks(readme) if "pytest" in b)
    assert block.strip() == "pip install -e '.[test]' && python3 -m pytest -q"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    names = {re.split(r"[<>=\[ ]", e)[0] for e in extras}
    assert {"pytest", "pytest-asyncio", "pytest-textual-snapshot"} <= names


def test_try_it_command_installs_the_console():
    readme = (ROOT / "README.md").read_text()
    assert sh_blocks(readme)[0].strip() == "pip install -e . && console demo"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_link_resolves_inside_the_repository(doc: Path):
    text = doc.read_text()
    links = LINK.findall(text)
    assert links, f"{doc.name} links nothing"
    for link in links:
        if re.match(r"[a-z]+://", link):
            continue
        path, _, anchor = link.partition("#")
        target = (doc.parent / path).resolve() if path else doc
        assert target.is_relative_to(ROOT), f"{doc.name}: {link} leaves the repository"
        assert target.exists(), f"{doc.name}: {link} does not exist"
        if anchor:
            assert anchor in anchors(target.read_text()), f"{doc.name}: no heading for #{anchor}"
    assert "../shared" not in text


def test_design_is_in_the_repository_and_linked():
    readme = (ROOT / "README.md").read_text()
    assert "[docs/DESIGN.md](docs/DESIGN.md)" in readme
    design = (ROOT / "docs" / "DESIGN.md").read_text()
    for section in ("## 4. Trust", "## 5. Nodes", "## 8. The command-line contract"):
        assert section in design


def test_node_config_and_remote_console_are_documented_for_operators():
    """Not only in error messages: how a node finds its config, and how fleet check finds the
    nodes' console (ssh sessions do not see a virtualenv)."""
    readme = (ROOT / "README.md").read_text()
    nodes = readme.split("### On the nodes", 1)[1].split("\n### ", 1)[0]
    assert "`$DEPOT_NODE_CONFIG`" in nodes and "node.toml" in nodes
    assert "[node] remote_console" in nodes and "virtualenv" in nodes
    assert "#node-configuration-nodetoml" in nodes
