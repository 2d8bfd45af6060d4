"""Node sets in ClusterShell syntax (DESIGN §6), as plain lists and folded strings.

A thin, typed wrapper over ``ClusterShell.NodeSet``: the syntax (ranges ``node[001-128]``, lists
``a,b``, set operations ``!`` difference, ``&`` intersection, ``^`` symmetric difference) is
ClusterShell's own, not reimplemented here. Group names (``@gpu``) resolve only from the dict the
site config gives, never from the machine's ``/etc/clustershell/groups.conf``, so a node set means
the same thing on every console host. An unknown group is an error, not an empty set.

ClusterShell expands a node set when it parses it (its ``RangeSet`` is a ``set`` of every index),
so ``node[1-99999999]`` would take minutes and gigabytes before ``len()`` could refuse it. A set is
therefore sized from its text first (``span``: the ranges it names, counted before set operations,
and each group's definition as it is resolved), and one larger than ``max_nodes`` (``[fleet]
max_nodes``) is refused with one line, without being expanded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ClusterShell.NodeSet import NodeSet, NodeSetException
from ClusterShell.NodeUtils import (
    GroupResolver,
    GroupResolverError,
    GroupResolverSourceError,
    GroupSource,
    GroupSourceError,
)

from core.errors import BadInput

DEFAULT_MAX_NODES = 100_000  # [fleet] max_nodes
_RANGE = re.compile(r"\s*(\d+)\s*(?:-\s*(\d+)\s*(?:/\s*(\d+)\s*)?)?")
_OPERATORS = ",!&^"


def _bracket_count(body: str) -> int:
    """How many indices a bracket body (``001-128,200,300-400/2``) names; 1 for what does not
    parse (ClusterShell will say what is wrong with it)."""
    total = 0
    for part in body.split(","):
        m = _RANGE.fullmatch(part)
        if m is None:
            return 1
        lo, hi, step = m.group(1), m.group(2), m.group(3)
        if hi is None:
            total += 1
        elif int(hi) >= int(lo) and (step is None or int(step) > 0):
            total += (int(hi) - int(lo)) // int(step or 1) + 1
    return total


def span(pattern: str) -> int:
    """An upper bound of the nodes ``pattern`` names or makes ClusterShell expand, from its text
    alone (nothing is expanded): a term is the product of its bracket ranges; ``,`` and ``^`` add,
    ``!`` keeps the left side, ``&`` the smaller side (left to right, as ClusterShell reads them),
    and no operand may be larger than the result either, since ClusterShell expands each one.
    A group (``@name``) counts 0 here; its definition is sized when it is resolved."""
    terms: list[tuple[str, int]] = []  # (operator before the term, its size)
    op, term, depth, brackets, start, group = ",", 1, 0, "", True, False
    for ch in pattern:
        if depth:
            if ch == "]":
                depth = 0
                term *= _bracket_count(brackets)
            else:
                brackets += ch
            continue
        if ch in _OPERATORS:
            terms.append((op, 0 if group or start else term))
            op, term, start, group = ch, 1, True, False
            continue
        if start and not ch.isspace():
            group, start = ch == "@", False
        if ch == "[":
            depth, brackets = 1, ""
    terms.append((op, 0 if group or start else term))
    total = 0
    for op, size in terms:
        if op in ",^":
            total += size
        elif op == "&":
            total = min(total, size)
    return max(total, *(size for _, size in terms))


class _TooMany(Exception):
    """A node set (or a group's definition) spans more than the allowed number of nodes."""

    def __init__(self, what: str, size: int) -> None:
        super().__init__(what)
        self.what, self.size = what, size


class _UnknownGroup(Exception):
    """Raised inside ClusterShell's resolution when ``@name`` is not in the site's groups."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _SiteGroups(GroupSource):
    """A group source backed by the site config's ``{name: nodeset}`` dict; a definition that spans
    more than ``max_nodes`` is refused as it is resolved, before ClusterShell expands it."""

    def __init__(self, groups: Mapping[str, str], max_nodes: int | None = None) -> None:
        super().__init__("site", dict(groups))
        self.max_nodes = max_nodes

    def _sized(self, what: str, text: str) -> str:
        if self.max_nodes is not None and (size := span(text)) > self.max_nodes:
            raise _TooMany(what, size)
        return text

    def resolv_map(self, group: str) -> str:
        if group not in self.groups:
            raise _UnknownGroup(group)
        return self._sized(f"group @{group}", self.groups[group])

    def resolv_all(self) -> str:
        return self._sized("all groups", ",".join(self.groups.values()))


def _resolver(groups: Mapping[str, str] | None, max_nodes: int | None = None) -> GroupResolver:
    return GroupResolver(_SiteGroups(groups or {}, max_nodes))


def _too_many(pattern: str, what: str, size: int, max_nodes: int) -> BadInput:
    return BadInput(
        f"node set {pattern.strip()!r}{': ' + what if what else ''} spans {size} nodes, more than the limit of {max_nodes} "
        "([fleet] max_nodes); split it or raise the limit"
    )


def _nodeset(pattern: str, groups: Mapping[str, str] | None, max_nodes: int | None = None) -> NodeSet:
    if not isinstance(pattern, str) or not pattern.strip():
        raise BadInput("empty node set")
    if max_nodes is not None and (size := span(pattern)) > max_nodes:
        raise _too_many(pattern, "", size, max_nodes)
    try:
        nodes = NodeSet(pattern.strip(), resolver=_resolver(groups, max_nodes))
    except _TooMany as exc:
        raise _too_many(pattern, exc.what, exc.size, max_nodes or 0) from None
    except _UnknownGroup as exc:
        raise BadInput(f"unknown node group @{exc.name} in {pattern!r}") from None
    except GroupResolverSourceError as exc:
        raise BadInput(f"unknown node group source {exc} in {pattern!r} (only @name and @site:name)") from None
    except (GroupResolverError, GroupSourceError) as exc:
        raise BadInput(f"bad node group in {pattern!r}: {str(exc).splitlines()[0]}") from None
    except (NodeSetException, ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInput(f"bad node set {pattern!r}: {reason}") from None
    if max_nodes is not None and len(nodes) > max_nodes:  # several groups, each under the limit
        raise _too_many(pattern, "", len(nodes), max_nodes)
    return nodes


def _check_name(name: object) -> None:
    """A node name must be usable as an ssh destination: no blanks, no leading '-' (an option)."""
    if not isinstance(name, str) or not name:
        raise BadInput(f"bad node name {name!r}")
    if name.startswith("-") or any(c.isspace() or ord(c) < 32 for c in name):
        raise BadInput(f"bad node name {name!r}: no blanks and no leading '-'")


def expand(
    pattern: str, groups: Mapping[str, str] | None = None, *, max_nodes: int | None = DEFAULT_MAX_NODES
) -> list[str]:
    """Expand a ClusterShell node set into node names, sorted the way ClusterShell sorts them.

    ``groups`` maps group names (without ``@``) to node sets, themselves in ClusterShell syntax.
    Raises BadInput (one line) for a malformed pattern, an unknown group, an empty pattern, or a
    set spanning more than ``max_nodes`` nodes (refused before it is expanded; None: no limit).
    """
    names = list(_nodeset(pattern, groups, max_nodes))
    for name in names:
        _check_name(name)
    return names


def fold(nodes: Iterable[str]) -> str:
    """Fold node names into the shortest ClusterShell form, e.g. ``node[001-003,005]``."""
    names = list(nodes)
    for name in names:
        _check_name(name)
        if any(c in name for c in ",[]!&^@"):
            raise BadInput(f"bad node name {name!r}: contains node set syntax")
    try:
        return str(NodeSet.fromlist(names, resolver=_resolver(None)))
    except (NodeSetException, ValueError) as exc:
        raise BadInput(f"cannot fold node names: {str(exc).splitlines()[0]}") from None


def count(pattern: str, groups: Mapping[str, str] | None = None, *, max_nodes: int | None = DEFAULT_MAX_NODES) -> int:
    """Number of nodes in a node set, without building the list of names; ClusterShell still
    builds its index sets, so a set spanning more than ``max_nodes`` is refused first."""
    return len(_nodeset(pattern, groups, max_nodes))
