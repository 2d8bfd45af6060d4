"""core.fleet.nodeset: ClusterShell syntax in, exact node lists and folded strings out."""

from __future__ import annotations

import pytest

from core.errors import BadInput
from core.fleet.nodeset import count, expand, fold

GROUPS = {"gpu": "gpu[01-04]", "rack1": "node[001-010]", "mixed": "@gpu,login1"}


@pytest.mark.parametrize(
    ("pattern", "nodes"),
    [
        ("node1", ["node1"]),
        ("node[001-003,005]", ["node001", "node002", "node003", "node005"]),
        ("node[1-3],gpu[01-02]", ["gpu01", "gpu02", "node1", "node2", "node3"]),
        ("node[1-10]!node5", ["node1", "node2", "node3", "node4", "node6", "node7", "node8", "node9", "node10"]),
        ("node[1-5]&node[3-8]", ["node3", "node4", "node5"]),
        ("node[1-5]^node[3-8]", ["node1", "node2", "node6", "node7", "node8"]),
        ("rack[1-2]-n[1-2]", ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]),
        ("@gpu", ["gpu01", "gpu02", "gpu03", "gpu04"]),
        ("@site:gpu", ["gpu01", "gpu02", "gpu03", "gpu04"]),
        ("@rack1!node[002-009]", ["node001", "node010"]),
        ("@mixed&gpu[03-09]", ["gpu03", "gpu04"]),
        ("@gpu^gpu[04-05]", ["gpu01", "gpu02", "gpu03", "gpu05"]),
        ("@mixed", ["gpu01", "gpu02", "gpu03", "gpu04", "login1"]),
        (" a, b ", ["a", "b"]),
    ],
)
def test_expand(pattern: str, nodes: list[str]) -> None:
    assert expand(pattern, GROUPS) == nodes


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "empty node set"),
        ("   ", "empty node set"),
        ("node[", "bad node set 'node[': missing bracket: \"node[\""),
        ("node[3-1]", 'bad node set \'node[3-1]\': bad range: "invalid values in range : "3-1""'),
        ("a,,b", "bad node set 'a,,b': missing nodeset operand with ',' operator: \"b\""),
        ("@nope", "unknown node group @nope in '@nope'"),
        ("node[1-3]&@nope", "unknown node group @nope in 'node[1-3]&@nope'"),
        ("@other:gpu", "unknown node group source other in '@other:gpu' (only @name and @site:name)"),
        ("node 1", "bad node name 'node 1': no blanks and no leading '-'"),
        ("-oProxyCommand=x", "bad node name '-oProxyCommand=x': no blanks and no leading '-'"),
    ],
)
def test_expand_refuses_bad_patterns(pattern: str, message: str) -> None:
    with pytest.raises(BadInput) as caught:
        expand(pattern, GROUPS)
    assert str(caught.value) == message
    assert caught.value.exit_code == 2


def test_groups_come_only_from_the_given_dict() -> None:
    with pytest.raises(BadInput, match=r"^unknown node group @gpu in '@gpu'$"):
        expand("@gpu")


@pytest.mark.parametrize(
    ("nodes", "folded"),
    [
        (["node001", "node002", "node003", "node005"], "node[001-003,005]"),
        (["node5", "node3", "node4", "gpu2", "gpu1"], "gpu[1-2],node[3-5]"),
        (["login"], "login"),
        (["a", "a"], "a"),
        ([], ""),
    ],
)
def test_fold(nodes: list[str], folded: str) -> None:
    assert fold(nodes) == folded


def test_fold_round_trips_expand() -> None:
    pattern = "node[001-128]!node[010-020],gpu[01-04]"
    assert fold(expand(pattern)) == "gpu[01-04],node[001-009,021-128]"


@pytest.mark.parametrize("name", ["a b", "x,y", "n[1]", "-o", ""])
def test_fold_refuses_bad_names(name: str) -> None:
    with pytest.raises(BadInput):
        fold([name])


def test_count_large_range_without_listing() -> None:
    assert count("n[1-100000]!n[1-10]") == 99990
