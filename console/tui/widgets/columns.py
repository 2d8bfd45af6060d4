"""Table columns that share out the width there is, most important first.

A screen declares each column as a ``Col``: its label, the narrowest it is still worth showing
(``min``), how important it is (``priority``, lower first) and whether it takes spare width
(``flex``: names, reasons, paths, details). ``layout`` turns those, the width of the widest value
seen in each column (``wants``) and the table's width into column widths, and ``InertTable``
applies it whenever the table is resized or its values change (``console.tui.widgets.cells``).

The rules, in order (``layout``):

1. In priority order, each column gets the width it wants: its widest value, at least ``min``,
   at most ``max`` and, for a column whose values can be very long (a reason, a path, a probe's
   detail), at most ``claim`` for now. A column that no longer fits whole takes what is left if
   that is at least its ``min`` (it is cut, with an ellipsis); otherwise it is hidden (width 0,
   padding too). So at 80 columns the important columns are shown whole and the least
   important ones give way, instead of every column being cut a little.
2. What is left goes to the columns still narrower than their widest value (the ``claim`` ones),
   in proportion to their ``flex`` (1 for the others).
3. Anything still left is shared by the ``flex`` columns, so the table uses the whole width.

Values are never cut when they are stored, only when they are drawn (``cell`` makes every cell a
``Text`` with ``overflow="ellipsis"``), so a wider terminal shows more of them and the row detail
(enter) shows them whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Col:
    """One table column: what it is called and how it competes for width (see ``layout``)."""

    label: str
    min: int = 4  # the narrowest it is shown at (cells); below that it is hidden
    priority: int = 5  # lower is more important: gets its width first, is hidden last
    flex: int = 0  # share of the spare width (0: never wider than its widest value)
    max: int | None = None  # never wider than this (None: as wide as its widest value)
    claim: int | None = None  # at most this wide before less important columns are placed
    key: str | None = None  # the DataTable column key (default: the label in lower case)

    @property
    def column_key(self) -> str:
        return self.key or self.label.lower()


def layout(cols: Sequence[Col], wants: Sequence[int], width: int, pad: int) -> list[int]:
    """The width of each of ``cols`` (0: hidden) in a table ``width`` cells wide, where each
    column shown also takes ``pad`` cells of padding and ``wants[i]`` is the width of the widest
    value (or label) of column ``i``."""
    n = len(cols)
    budget = width
    widths = [0] * n
    shown = [False] * n

    def cap(i: int, w: int) -> int:
        limit = cols[i].max
        return w if limit is None else min(w, limit)

    target = [cap(i, max(wants[i], cols[i].min)) for i in range(n)]
    # 1. in priority order: whole (or up to its claim), cut to what is left, or hidden
    for i in sorted(range(n), key=lambda i: (cols[i].priority, i)):
        claim = cols[i].claim
        ask = target[i] if claim is None else max(cols[i].min, min(target[i], claim))
        room = budget - pad
        if room < cols[i].min:
            continue
        widths[i], shown[i] = min(ask, room), True
        budget -= widths[i] + pad
    # 2. spare width to the columns not yet whole, in proportion to their flex
    while budget > 0:
        short = [i for i in range(n) if shown[i] and widths[i] < target[i]]
        if not short:
            break
        budget = _share(widths, short, cols, budget, target)

    # 3. the rest to the flex columns (past their values), so the table fills its width
    def room_left(i: int) -> bool:
        limit = cols[i].max
        return limit is None or widths[i] < limit

    growable = [i for i in range(n) if shown[i] and cols[i].flex and room_left(i)]
    while budget > 0 and growable:
        budget = _share(widths, growable, cols, budget, None)
        growable = [i for i in growable if room_left(i)]
    return widths


def _share(widths: list[int], among: list[int], cols: Sequence[Col], budget: int, upto: list[int] | None) -> int:
    """Give ``budget`` cells to the columns ``among``, in proportion to their ``flex`` (at least
    1; at least one cell each while any is left), none past ``upto`` or its ``max``; returns
    what is left."""
    weight = sum(max(1, cols[i].flex) for i in among)
    start = budget
    for i in among:
        if budget <= 0:
            break
        give = max(1, start * max(1, cols[i].flex) // weight)
        limit = cols[i].max if upto is None else upto[i]
        if limit is not None:
            give = min(give, limit - widths[i])
        give = min(give, budget)
        widths[i] += give
        budget -= give
    return budget
