"""Step 6 of a hydrate: after the switch, the node records what it accepted and ran.

Two independent records, so that losing one does not re-open replay (issue 12 item 8):

* ``state.json``: high-water marks per channel and the switch history (``NodeRoot.load_state``
  validates it with ``parse_state``: a damaged file is refused with one line saying how to
  recover, never trusted in part);
* the accepted pointer envelope itself, byte for byte, at ``pointers/<channel>.json`` and beside
  the release it named, ``releases/<hex>/pointer-<channel>.json``.

``effective_mark`` is the higher of the state's mark and the kept pointers' versions: a deleted,
emptied or older ``state.json`` (restored from a backup) cannot lower it. The kept pointers are
local files, trusted like ``state.json`` (their signatures were checked when they were
accepted; they are not re-checked, so a later key rotation does not drop a mark).
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.durable import atomic_write
from core.errors import BadInput, DepotError
from core.model.digest import digest_bytes, is_digest
from core.node.root import STATE_SCHEMA, NodeRoot

if TYPE_CHECKING:
    from core.trust.pointers import Pointer

POINTERS_DIR = "pointers"
MAX_STATE_BYTES = 64 << 20


def record(
    node: NodeRoot,
    channel: str,
    release_id: str,
    arch: str,
    root: str,
    ptr: Pointer | None,
    now: datetime,
    envelope: bytes | None = None,
) -> None:
    """After the switch: keep the accepted pointer ``envelope`` (if any), raise the channel's
    high-water mark and append to the switch history."""
    from core.clock import format_time

    if ptr is not None and envelope is not None:
        keep_pointer(node, channel, release_id, envelope)
    state = node.load_state()
    when = format_time(now)
    if ptr is not None:
        mark = state["marks"].get(channel)
        if mark is None or ptr.version >= mark["version"]:
            state["marks"][channel] = {
                "version": ptr.version,
                "digest": ptr.digest,
                "release": ptr.release,
                "updated": when,
            }
    last = next((h for h in reversed(state["history"]) if h.get("channel") == channel), None)
    if last is None or (last["release"], last["arch"], last.get("version")) != (
        release_id,
        arch,
        ptr.version if ptr else None,
    ):
        state["history"].append(
            {
                "time": when,
                "channel": channel,
                "release": release_id,
                "arch": arch,
                "root": root,
                "version": ptr.version if ptr else None,
                "pinned": ptr is None,
            }
        )
    node.save_state(state)


# -- the kept pointers ------------------------------------------------------------------------------
def pointer_paths(node: NodeRoot, channel: str) -> list[Path]:
    """Every kept copy of an accepted pointer of ``channel`` (the first is the latest one)."""
    paths = [node.root / POINTERS_DIR / f"{channel}.json"]
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for rel in sorted(os.listdir(node.releases)):
            p = node.releases / rel / f"pointer-{channel}.json"
            if len(rel) == 64 and p.is_file():
                paths.append(p)
    return paths


def keep_pointer(node: NodeRoot, channel: str, release_id: str, envelope: bytes) -> None:
    """The accepted pointer's exact bytes at ``pointers/<channel>.json`` and beside its release
    (written before ``state.json``; never lowered: a pinned hydrate writes none)."""
    (node.root / POINTERS_DIR).mkdir(exist_ok=True)
    for path in (
        node.root / POINTERS_DIR / f"{channel}.json",
        node.release_dir(release_id) / f"pointer-{channel}.json",
    ):
        with contextlib.suppress(FileNotFoundError):
            if path.read_bytes() == envelope:
                continue
        atomic_write(path, envelope, 0o444)


def kept_mark(node: NodeRoot, channel: str) -> tuple[int | None, str | None]:
    """The highest (version, envelope digest) among the kept pointers of ``channel``; copies that
    do not parse, or are of another channel, are skipped."""
    from core.trust.pointers import parse_pointer_payload, pointer_envelope

    best: tuple[int | None, str | None] = (None, None)
    for path in pointer_paths(node, channel):
        try:
            data = path.read_bytes()
            ptr = parse_pointer_payload(pointer_envelope(data, str(path)).payload, digest_bytes(data), str(path))
        except (OSError, DepotError):
            continue
        if ptr.channel == channel and (best[0] is None or ptr.version > best[0]):
            best = (ptr.version, ptr.digest)
    return best


def effective_mark(node: NodeRoot, channel: str) -> tuple[int | None, str | None]:
    """The channel's high-water mark: ``state.json``'s, unless a kept pointer is newer."""
    state_v, state_d = node.mark(channel)
    kept_v, kept_d = kept_mark(node, channel)
    if kept_v is not None and (state_v is None or kept_v > state_v):
        return kept_v, kept_d
    return state_v, state_d


# -- state.json, validated --------------------------------------------------------------------------
def parse_state(data: bytes, path: Path) -> dict[str, Any]:
    """The node state from the bytes of ``state.json`` (empty: none yet), every field checked.

    A damaged file (not JSON, truncated, wrong types) is a ``BadInput`` naming the file and the
    recovery: move it aside; the marks are then rebuilt from the kept pointers.
    """
    if not data.strip():
        return {"schema": STATE_SCHEMA, "marks": {}, "history": []}

    def damaged(why: str) -> BadInput:
        return BadInput(
            f"{path}: damaged node state ({why}); move it aside (mv {path} {path}.bad) and run again: "
            f"the high-water marks are rebuilt from {path.parent / POINTERS_DIR}/"
        )

    if len(data) > MAX_STATE_BYTES:
        raise damaged(f"larger than {MAX_STATE_BYTES} bytes")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise damaged("not valid JSON") from None
    if not isinstance(doc, dict):
        raise damaged("not a JSON object")
    if doc.get("schema") != STATE_SCHEMA:
        raise damaged(f"not a {STATE_SCHEMA} file")
    marks, history = doc.setdefault("marks", {}), doc.setdefault("history", [])
    if not isinstance(marks, dict):
        raise damaged("marks is not an object")
    for channel, mark in marks.items():
        if not isinstance(mark, dict):
            raise damaged(f"mark of {channel!r} is not an object")
        v, d = mark.get("version"), mark.get("digest")
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise damaged(f"mark of {channel!r}: version must be a positive integer")
        if not is_digest(d):
            raise damaged(f"mark of {channel!r}: digest must be a sha256 digest")
    if not isinstance(history, list):
        raise damaged("history is not a list")
    for i, h in enumerate(history):
        if not (
            isinstance(h, dict)
            and isinstance(h.get("channel"), str)
            and is_digest(h.get("release"))
            and isinstance(h.get("arch"), str)
            and (h.get("root") is None or is_digest(h.get("root")))
            and (h.get("version") is None or (isinstance(h["version"], int) and not isinstance(h["version"], bool)))
        ):
            raise damaged(f"history entry {i} is malformed")
    return doc
