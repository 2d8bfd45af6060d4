"""Step 1 of a hydrate: the signed pointer and the release it names, verified.

The pointer is checked against the node's high-water mark (replay, same version with other
bytes, expiry, channel mismatch: ``TrustError``, exit 4): the higher of ``state.json``'s and the
accepted pointers the node keeps (``record.effective_mark``), then the release envelope (signatures,
payload hash = id). A pinned release (``release=``) reads no pointer and moves no mark.

Staged rollout (issue 16): beside ``channels/<channel>.json`` the store may hold a *stage
pointer*, ``channels/<channel>.rollout.json``: an ordinary signed pointer of channel
``<channel>.rollout`` whose payload also names its ``audience`` (canary node names, a percentage
of nodes by a stable hash of the node name, and the ``base`` release the channel carries). A node
follows it only when it verifies (own high-water mark, expiry), its base is the channel's current
release and this node (``$DEPOT_NODE_NAME``, else the short host name) is in the audience; in
every other case it follows the channel's pointer, the release every node may run. The node keeps
no stage state of its own and the console keeps none per node: the stage is a function of the
signed stage pointer and the node's name.

Several mirrors (an HTTP store with ``--store http://a/,http://b/``): the channel's pointer is read
from every mirror at once (``HttpStore.read_file_each``, each within the store's deadline), each is
verified, and the newest valid one (highest version) wins, whichever mirror is listed first; the
stage pointer is read from the mirror that served it. A mirror serving an older, invalid or no
pointer (or not answering) is reported in ``Verified.stale_mirrors``, not fatal; if none verifies,
the first mirror's refusal is raised as with one mirror. Everything else is read as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


NODE_NAME_ENV = "DEPOT_NODE_NAME"


def stage_channel(channel: str) -> str:
    """The channel of ``channel``'s rollout stage pointer."""
    return f"{channel}.rollout"


def node_name() -> str:
    """This node's name as the console's node sets spell it: ``$DEPOT_NODE_NAME``, else the short
    host name."""
    import os
    import socket

    return os.environ.get(NODE_NAME_ENV) or socket.gethostname().split(".")[0]


@dataclass
class Verified:
    """A release this node may install: its id, envelope bytes, manifest, and the pointer (if any)."""

    release_id: str
    envelope: bytes
    release: Release
    pointer: Pointer | None  # None for a pinned release
    pointer_envelope: bytes | None = None  # the pointer's exact bytes (kept by ``record``)
    stage: Pointer | None = None  # the rollout stage pointer this node follows, if any
    stage_envelope: bytes | None = None
    #: Mirrors whose channel pointer lost (older, invalid, absent, unreachable): url and reason.
    stale_mirrors: list[dict[str, str]] = field(default_factory=list)


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
    ptr = stage = stage_data = None
    stale: list[dict[str, str]] = []
    if release is None:
        mark_v, mark_d = effective_mark(node, channel)  # state.json, or the kept pointers if newer
        ptr, data, source, stale = _newest_pointer(store, trust, channel, mark_v, mark_d, now)
        release_id = ptr.release
        stage, stage_data = _stage(store, trust, node, channel, ptr, now, source)
        if stage is not None:
            release_id = stage.release
    else:
        release_id = resolve_store_release(store, release)
    envelope = store.read_file(release_path(release_id))
    if envelope is None:
        raise NotFound(f"release {release_id} not found in store {store.location}")
    rel = release_from_envelope(envelope, trust, release_id, max_manifest_bytes)
    verified = Verified(release_id, envelope, rel, ptr, data if ptr is not None else None, stale_mirrors=stale)
    if ptr is not None and stage is not None:
        verified.stage, verified.stage_envelope = stage, stage_data
    return verified


def _newest_pointer(
    store: Store, trust: TrustSet, channel: str, mark_v: int | None, mark_d: str | None, now: datetime
) -> tuple[Pointer, bytes, str | None, list[dict[str, str]]]:
    """The channel's pointer verified against the mark: (pointer, bytes, mirror it came from (None
    with one mirror), stale mirrors). With several mirrors the newest valid one (module docstring)."""
    from core.errors import StoreError, TrustError
    from core.trust.pointers import verify_pointer

    path = channel_path(channel)
    read_each = getattr(store, "read_file_each", None)
    if read_each is None or len(getattr(store, "urls", ())) < 2:
        data = store.read_file(path)
        if data is None:
            raise NotFound(f"channel {channel} has no pointer in store {store.location}")
        return verify_pointer(data, channel, trust, mark_v, mark_d, now), data, None, []
    valid: list[tuple[str, Pointer, bytes]] = []
    lost: list[dict[str, str]] = []
    refused: TrustError | None = None
    failed: StoreError | None = None
    for url, got in read_each(path):
        if isinstance(got, StoreError):
            failed = failed or got
            lost.append({"url": url, "reason": f"unreachable: {got}"})
        elif got is None:
            lost.append({"url": url, "reason": "no pointer"})
        else:
            try:
                valid.append((url, verify_pointer(got, channel, trust, mark_v, mark_d, now), got))
            except TrustError as exc:
                refused = refused or exc
                lost.append({"url": url, "reason": f"refused: {exc}"})
    if not valid:
        if refused is not None:
            raise refused
        if failed is not None and all(m["reason"] != "no pointer" for m in lost):
            raise failed
        raise NotFound(f"channel {channel} has no pointer in store {store.location}")
    url, ptr, data = max(valid, key=lambda v: v[1].version)  # the first of the newest
    older = [
        {"url": u, "reason": f"older: version {p.version} (version {ptr.version} on {url})"}
        for u, p, _ in valid
        if p.version < ptr.version
    ]
    order = {u: i for i, u in enumerate(getattr(store, "urls", []))}
    return ptr, data, url, sorted(older + lost, key=lambda m: order.get(m["url"], 0))


def _stage(
    store: Store,
    trust: TrustSet,
    node: NodeRoot,
    channel: str,
    main: Pointer,
    now: datetime,
    source: str | None = None,
) -> tuple[Pointer | None, bytes | None]:
    """The channel's stage pointer if this node follows it (module docstring), else (None, None).

    A stage pointer that does not verify (replayed, expired, unsigned) is not followed: the node
    stays on the channel's own release, the one every node may run.
    """
    from core.errors import TrustError
    from core.trust.pointers import verify_pointer

    name = stage_channel(channel)
    try:
        read_at = getattr(store, "read_file_at", None)
        data = read_at(source, channel_path(name)) if source and read_at else store.read_file(channel_path(name))
    except Exception:  # noqa: BLE001 - a stage pointer that cannot be read is not followed
        return None, None
    if data is None:
        return None, None
    mark_v, mark_d = effective_mark(node, name)
    try:
        stage = verify_pointer(data, name, trust, mark_v, mark_d, now)
    except TrustError:
        return None, None
    aud = stage.audience
    if aud is None or aud.base != main.release or not aud.includes(node_name()):
        return None, None
    return stage, data


def keep_stage(node: NodeRoot, channel: str, verified: Verified) -> None:
    """After the switch: keep the stage pointer this node followed (``record.keep_pointer``), which
    is its high-water mark for the stage channel (``record.effective_mark``)."""
    from core.node.hydrate.record import keep_pointer

    if verified.stage is not None and verified.stage_envelope is not None:
        keep_pointer(node, stage_channel(channel), verified.release_id, verified.stage_envelope)


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
