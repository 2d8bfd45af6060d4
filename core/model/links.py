"""Where an image's symlinks lead: resolved component by component, following the image's own links.

DESIGN §3: a link target is relative and must stay inside the image. "Inside" is a property of
the *resolved* path, not of the target string: ``d -> .`` followed by ``d/d/../..``, or
``sub/up -> ..`` followed by ``sub/up/../x``, are textually inside and really outside. So every
link is resolved as the kernel would, from the directory holding it (its *position* in the image:
a subtree shared by several directories is judged at each of them):

* ``.`` and empty components stay; ``..`` climbs one directory, and climbing above the image
  root is an escape;
* a name that is a directory descends; a name that is a link is followed (its own resolution,
  from its own directory), at most ``MAX_LINK_HOPS`` links in all per resolution, like the
  kernel's 40 (a loop, or a longer chain, is refused: the kernel would not open it either);
* a name that does not exist, or a file with components after it, cannot be looked up further
  by the kernel; the rest of the target is then followed textually (conservative: a later
  ``..`` climbs back, and may still escape).

``check_links`` is the one function publish (from a scanned directory), verify (over the store's
trees), export and hydrate (over an image's plan) call; only the ``lookup`` differs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from core.errors import BadInput

#: Links followed in one resolution at most (Linux ``MAXSYMLINKS``).
MAX_LINK_HOPS = 40


class LinkError(BadInput):
    """A link that leaves the image or cannot be resolved; ``path`` is the link at fault."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True, slots=True)
class Node:
    """What ``lookup`` returns for a path of the image: its type and, for a link, its target."""

    type: str  # "file" | "dir" | "link"
    target: str | None = None


class Resolvable(Protocol):
    """What a lookup gives: a ``Node``, or a manifest ``Entry``."""

    @property
    def type(self) -> str: ...

    @property
    def target(self) -> str | None: ...


#: ``lookup(relpath)``: the entry at that path of the image (``type``, ``target``), None if absent.
Lookup = Callable[[str], Resolvable | None]

_Resolved = tuple[tuple[str, ...], int, int]  # (components, how many trailing ones are virtual, hops)


class _Resolver:
    def __init__(self, lookup: Lookup, where: str) -> None:
        self.lookup = lookup
        self.where = where
        self.done: dict[str, _Resolved] = {}
        self.active: set[str] = set()

    def fail(self, path: str, target: str, what: str) -> LinkError:
        return LinkError(f"{self.where}: link {path} {what} ({target})", path)

    def resolve(self, path: str, target: str) -> _Resolved:
        """Where the link at ``path`` (to ``target``) leads: components from the image root."""
        hit = self.done.get(path)
        if hit is not None:
            return hit
        if path in self.active:
            raise self.fail(path, target, f"is a loop: too many levels of symbolic links (more than {MAX_LINK_HOPS})")
        self.active.add(path)
        cur = path.split("/")[:-1]
        virtual = 0  # trailing components of ``cur`` that do not exist as directories
        hops = 0
        for c in target.split("/"):
            if c in ("", "."):
                continue
            if c == "..":
                if not cur:
                    raise self.fail(path, target, "points outside the image")
                cur.pop()
                virtual = max(0, virtual - 1)
                continue
            if virtual:
                cur.append(c)
                virtual += 1
                continue
            here = "/".join([*cur, c])
            e = self.lookup(here)
            if e is None or e.type == "file":
                cur.append(c)
                virtual = 1
            elif e.type == "dir":
                cur.append(c)
            else:
                inner, virtual, inner_hops = self.resolve(here, e.target or "")
                hops += 1 + inner_hops
                if hops > MAX_LINK_HOPS:
                    raise self.fail(
                        path, target, f"needs too many levels of symbolic links (more than {MAX_LINK_HOPS})"
                    )
                cur = list(inner)
        self.active.discard(path)
        resolved = self.done[path] = (tuple(cur), virtual, hops)
        return resolved


def check_links(links: Iterable[tuple[str, str]], lookup: Lookup, where: str = "image") -> None:
    """Refuse (``LinkError``, exit 2) the first of ``links`` (``(relpath, target)``, relpath from the
    image root) whose target, resolved in the image ``lookup`` describes, leaves the image or needs
    more than ``MAX_LINK_HOPS`` links; ``where`` begins the message."""
    resolver = _Resolver(lookup, where)
    for path, target in links:
        resolver.resolve(path, target)


def bad_links(links: Iterable[tuple[str, str]], lookup: Lookup, where: str = "image") -> list[LinkError]:
    """Every link at fault among ``links`` (as ``check_links``, but all of them, each once: a link
    that fails because one it passes through does is not counted again)."""
    resolver = _Resolver(lookup, where)
    found: dict[str, LinkError] = {}
    for path, target in links:
        try:
            resolver.resolve(path, target)
        except LinkError as exc:
            resolver.active.clear()
            found.setdefault(exc.path, exc)
    return list(found.values())


def resolve_link(path: str, target: str, lookup: Lookup) -> str:
    """The image-relative path the link at ``path`` leads to ("" for the image root); ``LinkError``
    as ``check_links``."""
    return "/".join(_Resolver(lookup, "image").resolve(path, target)[0])
