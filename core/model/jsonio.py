"""JSON from untrusted bytes with a bounded nesting depth, refused before parsing.

``json.loads`` recurses once per nesting level: a document nested thousands deep raises
``RecursionError`` (and one just under the interpreter's limit parses into a value every later
``json.dumps`` or ``repr`` recurses on again). Envelopes, manifests and pointers are shallow by
construction, so ``loads`` measures the depth first, at C speed (strings removed by one regular
expression, then one pass per level over the brackets left), and refuses anything deeper than
``max_depth`` with one ``BadInput`` line (exit 2). Malformed input falls through to the parser,
which reports it as usual.
"""

from __future__ import annotations

import json
import re
from typing import Any

from core.errors import BadInput, DepotError

#: Nesting levels a signed document may have at most (envelope, release manifest, pointer).
MAX_JSON_DEPTH = 64

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_INNERMOST = re.compile(rb"\[\]|\{\}")


def too_deep(data: bytes, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """True when ``data`` (JSON text) nests arrays and objects more than ``max_depth`` levels deep."""
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    for _ in range(max_depth):
        if not brackets:
            return False
        inner = _INNERMOST.sub(b"", brackets)
        if len(inner) == len(brackets):  # unbalanced: malformed, the parser says so
            return False
        brackets = inner
    return bool(brackets) and _INNERMOST.search(brackets) is not None


def loads(data: bytes | str, what: str, max_depth: int = MAX_JSON_DEPTH, error: type[DepotError] = BadInput) -> Any:
    """``json.loads(data)``, refusing (``error``, ``BadInput`` unless said: a pointer's is a trust
    failure) input nested deeper than ``max_depth`` before parsing; ``ValueError`` and
    ``UnicodeDecodeError`` from the parser are left to the caller."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if too_deep(raw, max_depth):
        raise error(f"{what}: JSON nested deeper than {max_depth} levels, refused")
    try:
        return json.loads(data)
    except RecursionError:  # not reached after the check above; a last line of defence
        raise error(f"{what}: JSON nested too deeply, refused") from None
