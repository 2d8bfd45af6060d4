"""Step 1 of a hydrate: the signed pointer and the release it names, verified.

The pointer is checked against the node's high-water mark (replay, same version with other
bytes, expiry, channel mismatch: ``TrustError``, exit 4): the higher of ``state.json``'s and the
accepted pointers the node keeps (``record.effective_mark``), then the release envelope (signatures,
payload hash = id). A pinned release (``release=``) reads no pointer and moves no mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from core.errors import CorruptObject, NotFound
from core.model.digest import digest_bytes, resolve_release_ref
from core.model.manifest import Release
from core.node.hydrate.record import effective_mark
from core.node.root import NodeRoot
from core.store.base import Store, channel_path, release_path
from core.trust.releases import release_from_envelope
from core.trust.signing import TrustSet, parse_envelope

if TYPE_CHECKING:
    from core.trust.pointers import Pointer


@dataclass
class Verified:
    """A release this node may install: its id, envelope bytes, manifest, and the pointer (if any)."""

    release_id: str
    envelope: bytes
    release: Release
    pointer: Pointer | None  # None for a pinned release
    pointer_envelope: bytes | None = None  # the pointer's exact bytes (kept by ``record``)


def verify(
    store: Store,
    trust: TrustSet,
    node: NodeRoot,
    channel: str,
    *,
    release: str | None,
    now: datetime,
    max_manifest_bytes: int,
) -> Verified:
    """The channel's pointer (unless ``release`` pins one) and the release envelope, verified."""
    from core.trust.pointers import verify_pointer

    ptr = None
    if release is None:
        data = store.read_file(channel_path(channel))
        if data is None:
            raise NotFound(f"channel {channel} has no pointer in store {store.location}")
        mark_v, mark_d = effective_mark(node, channel)  # state.json, or the kept pointers if newer
        ptr = verify_pointer(data, channel, trust, mark_v, mark_d, now)
        release_id = ptr.release
    else:
        release_id = resolve_store_release(store, release)
    envelope = store.read_file(release_path(release_id))
    if envelope is None:
        raise NotFound(f"release {release_id} not found in store {store.location}")
    rel = release_from_envelope(envelope, trust, release_id, max_manifest_bytes)
    return Verified(release_id, envelope, rel, ptr, data if ptr is not None else None)


def resolve_store_release(store: Store, ref: str) -> str:
    """A full release id from ``sha256:<hex>``, bare hex, or a unique prefix of >= 4 hex characters
    (``resolve_release_ref`` over the store's listing: a node has no catalogue)."""
    return resolve_release_ref(
        ref,
        lambda prefix: [r for r in store.list_release_ids() if r[7:].startswith(prefix)],
        where=f" in store {store.location}",
    )


# -- the release as the node knows it --------------------------------------------------------------
def local_release(node: NodeRoot, release_id: str) -> Release:
    """The release kept at ``releases/<hex>/release.json`` (verified when hydrated).

    Signatures were checked when it was fetched; here only the payload hash is re-checked, so a
    node can print env and run smoke with no trust set and no network.
    """
    path = node.release_dir(release_id) / "release.json"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"release {release_id[7:19]} is not on this node ({path} missing): hydrate first") from None
    from core.model.manifest import parse_payload

    env = parse_envelope(data, str(path))
    if digest_bytes(env.payload) != release_id:
        raise CorruptObject(f"{path}: payload does not hash to {release_id[7:19]} (edited?)")
    return parse_payload(env.payload, release_id, [])
