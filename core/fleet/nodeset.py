"""Node sets in ClusterShell syntax (DESIGN §6), as plain lists and folded strings.

A thin, typed wrapper over ``ClusterShell.NodeSet``: the syntax (ranges ``node[001-128]``, lists
``a,b``, set operations ``!`` difference, ``&`` intersection, ``^`` symmetric difference) is
ClusterShell's own, not reimplemented here. Group names (``@gpu``) resolve only from the dict the
site config gives, never from the machine's ``/etc/clustershell/groups.conf``, so a node set means
the same thing on every console host. An unknown group is an error, not an empty set.
"""

from __future__ import annotations

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


class _UnknownGroup(Exception):
    """Raised inside ClusterShell's resolution when ``@name`` is not in the site's groups."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _SiteGroups(GroupSource):
    """A group source backed by the site config's ``{name: nodeset}`` dict."""

    def __init__(self, groups: Mapping[str, str]) -> None:
        super().__init__("site", dict(groups))

    def resolv_map(self, group: str) -> str:
        if group not in self.groups:
            raise _UnknownGroup(group)
        return self.groups[group]

    def resolv_all(self) -> str:
        return ",".join(self.groups.values())


def _resolver(groups: Mapping[str, str] | None) -> GroupResolver:
    return GroupResolver(_SiteGroups(groups or {}))


def _nodeset(pattern: str, groups: Mapping[str, str] | None) -> NodeSet:
    if not isinstance(pattern, str) or not pattern.strip():
        raise BadInput("empty node set")
    try:
        return NodeSet(pattern.strip(), resolver=_resolver(groups))
    except _UnknownGroup as exc:
        raise BadInput(f"unknown node group @{exc.name} in {pattern!r}") from None
    except GroupResolverSourceError as exc:
        raise BadInput(f"unknown node group source {exc} in {pattern!r} (only @name and @site:name)") from None
    except (GroupResolverError, GroupSourceError) as exc:
        raise BadInput(f"bad node group in {pattern!r}: {str(exc).splitlines()[0]}") from None
    except (NodeSetException, ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInput(f"bad node set {pattern!r}: {reason}") from None


def _check_name(name: object) -> None:
    """A node name must be usable as an ssh destination: no blanks, no leading '-' (an option)."""
    if not isinstance(name, str) or not name:
        raise BadInput(f"bad node name {name!r}")
    if name.startswith("-") or any(c.isspace() or ord(c) < 32 for c in name):
        raise BadInput(f"bad node name {name!r}: no blanks and no leading '-'")


def expand(pattern: str, groups: Mapping[str, str] | None = None) -> list[str]:
    """Expand a ClusterShell node set into node names, sorted the way ClusterShell sorts them.

    ``groups`` maps group names (without ``@``) to node sets, themselves in ClusterShell syntax.
    Raises BadInput (one line) for a malformed pattern, an unknown group or an empty pattern.
    """
    names = list(_nodeset(pattern, groups))
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


def count(pattern: str, groups: Mapping[str, str] | None = None) -> int:
    """Number of nodes in a node set, without building the list (large ranges stay cheap)."""
    return len(_nodeset(pattern, groups))
