"""Co-signing: a pointer that needs more than one key waits as a proposal in the store (issue 16).

When a channel's threshold (``TrustSet.channel_threshold``: ``[trust] thresholds`` ``channel`` or
``"channel:<name>"``) is above 1, ``promote``/``rollback``/``refresh`` do not publish: they write
the pointer payload they would have issued (version N+1), signed by the site key, to
``proposals/<channel>.json`` in the **store**, beside the channel it would move. ``approve``
(another operator, another key: ``--key PATH``) adds a DSSE signature over the *same payload
bytes*; when the distinct trusted, unrevoked channel keys that signed reach the threshold, the
envelope is verified like any pointer and compare-and-swapped in over the base pointer the
proposal was made against. The published pointer is an ordinary DSSE envelope with N signatures,
so nodes verify it with the same rule (only distinct trusted key ids count).

Why the store and not ``state.db``: the second operator usually works from another console host,
with their own site directory and database but the same store; the store is the one place both
see, and its compare-and-swap orders racing approvals as it orders racing promotes (a loser exits
3, nothing changed). A proposal holds nothing secret (a payload and signatures over it), and
nothing a node reads: nodes only ever read ``channels/``.

Rules: the same key twice never counts twice (refused, exit 4); an untrusted, revoked key or
one without the ``channel`` role is refused (exit 4); a proposal whose base pointer moved (another
pointer was issued meanwhile), or whose payload expired, is stale (exit 3, nothing published):
promote again. A new promote on a channel replaces a stale or published proposal, never a live one
(exit 3).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature

from core.clock import format_time, parse_time
from core.errors import BadInput, Conflict, NotFound, TrustError
from core.model.digest import digest_bytes
from core.model.jsonio import loads as bounded_loads
from core.store.base import check_channel_name
from core.trust.pointers import Pointer, parse_pointer_payload
from core.trust.signing import CHANNEL_TYPE, SigningKey, pae

if TYPE_CHECKING:
    from core.site.channels import Current
    from core.site.site import Site

PROPOSAL_TYPE = "depot-proposal"
PROPOSAL_SCHEMA = 1
MAX_PROPOSAL_BYTES = 256 << 10


def proposal_path(channel: str) -> str:
    """Relative store path of a channel's proposal."""
    return f"proposals/{check_channel_name(channel)}.json"


@dataclass
class Proposal:
    """A pointer payload waiting for signatures, and the base pointer it was made against."""

    channel: str
    payload: bytes
    signatures: list[dict[str, str]]
    base_version: int | None
    base_digest: str | None
    proposed_by: str
    created: str
    state: str = "open"  # open | published
    approvals: list[dict[str, str]] = field(default_factory=list)
    threshold: int = 1
    signed_by: tuple[str, ...] = ()  # distinct trusted channel keys whose signatures verify
    data: bytes = b""  # the file's bytes as read (compare-and-swap)

    @property
    def pointer(self) -> Pointer:
        return parse_pointer_payload(self.payload, "", f"{self.channel} proposal")

    def to_doc(self) -> dict[str, Any]:
        return {
            "type": PROPOSAL_TYPE,
            "schema": PROPOSAL_SCHEMA,
            "channel": self.channel,
            "state": self.state,
            "base": {"version": self.base_version, "digest": self.base_digest},
            "envelope": {
                "payloadType": CHANNEL_TYPE,
                "payload": base64.b64encode(self.payload).decode(),
                "signatures": self.signatures,
            },
            "proposed_by": self.proposed_by,
            "created": self.created,
            "approvals": self.approvals,
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_doc(), indent=1, sort_keys=True).encode() + b"\n"

    def envelope_bytes(self) -> bytes:
        """The pointer as published: a DSSE envelope of the payload with every signature collected."""
        env = {
            "payloadType": CHANNEL_TYPE,
            "payload": base64.b64encode(self.payload).decode(),
            "signatures": self.signatures,
        }
        return json.dumps(env, indent=1, sort_keys=True).encode() + b"\n"

    def to_json(self) -> dict[str, Any]:
        ptr = self.pointer
        return {
            "channel": self.channel,
            "state": self.state,
            "version": ptr.version,
            "release": ptr.release,
            "action": ptr.action,
            "base_version": self.base_version,
            "signed_by": list(self.signed_by),
            "signatures": len(self.signed_by),
            "threshold": self.threshold,
            "missing": max(0, self.threshold - len(self.signed_by)),
            "proposed_by": self.proposed_by,
            "created": self.created,
            "expires": ptr.expires,
            "approvals": self.approvals,
        }

    def message(self) -> str:
        ptr, missing = self.pointer, max(0, self.threshold - len(self.signed_by))
        return (
            f"{self.channel}: proposal for version {ptr.version} ({ptr.action} {ptr.release[7:19]}) written; "
            f"{len(self.signed_by)} of {self.threshold} signatures, {missing} more needed: "
            f"console approve {ptr.release[7:19]} --channel {self.channel} --key PATH"
        )


def _counted(site: Site, channel: str, payload: bytes, signatures: list[dict[str, Any]]) -> tuple[str, ...]:
    """Distinct trusted, unrevoked channel keys whose signature over ``payload`` verifies."""
    message, good = pae(CHANNEL_TYPE, payload), set()
    for s in signatures:
        tk = site.trust.keys.get(str(s.get("keyid")))
        if tk is None or tk.revoked or "channel" not in tk.roles:
            continue
        try:
            tk.public.verify(base64.b64decode(str(s.get("sig")), validate=True), message)
        except (InvalidSignature, binascii.Error, ValueError):
            continue
        good.add(tk.id)
    return tuple(sorted(good))


def parse_proposal(site: Site, channel: str, data: bytes) -> Proposal:
    """Strictly parse a proposal file; ``BadInput`` (exit 2) for anything malformed."""
    where = f"store {proposal_path(channel)}"
    if len(data) > MAX_PROPOSAL_BYTES:
        raise BadInput(f"{where}: larger than {MAX_PROPOSAL_BYTES} bytes")
    try:
        doc = bounded_loads(data, where)
    except (ValueError, UnicodeDecodeError):
        raise BadInput(f"{where}: not valid JSON") from None
    try:
        if doc["type"] != PROPOSAL_TYPE or doc["schema"] != PROPOSAL_SCHEMA or doc["channel"] != channel:
            raise BadInput(f"{where}: not a {PROPOSAL_TYPE} for channel {channel}")
        env, base = doc["envelope"], doc["base"]
        if env["payloadType"] != CHANNEL_TYPE or not isinstance(env["signatures"], list):
            raise BadInput(f"{where}: not a channel pointer proposal")
        payload = base64.b64decode(env["payload"], validate=True)
        sigs = [dict(keyid=str(s["keyid"]), sig=str(s["sig"])) for s in env["signatures"]]
        prop = Proposal(
            channel,
            payload,
            sigs,
            base["version"] if isinstance(base["version"], int) else None,
            base["digest"] if isinstance(base["digest"], str) else None,
            str(doc["proposed_by"]),
            str(doc["created"]),
            str(doc.get("state", "open")),
            [dict(a) for a in doc.get("approvals", [])],
            data=data,
        )
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        if isinstance(exc, BadInput):
            raise
        raise BadInput(f"{where}: malformed proposal ({type(exc).__name__})") from None
    ptr = prop.pointer  # the payload parses as a pointer (MalformedPointer, exit 4, otherwise)
    if ptr.channel != channel:
        raise BadInput(f"{where}: the payload is a pointer for channel {ptr.channel!r}")
    prop.threshold = site.trust.channel_threshold(channel)
    prop.signed_by = _counted(site, channel, payload, sigs)
    return prop


def read_proposal(site: Site, channel: str) -> Proposal | None:
    data = site.store.read_file(proposal_path(channel))
    return None if data is None else parse_proposal(site, channel, data)


def stale_reason(site: Site, prop: Proposal, cur: Current) -> str:
    """Why ``prop`` can no longer be published over ``cur`` ('' when it still can)."""
    if prop.state != "open":
        return f"it was {prop.state} already"
    have_v = cur.pointer.version if cur.pointer else None
    have_d = digest_bytes(cur.data) if cur.data is not None else None
    if (have_v, have_d) != (prop.base_version, prop.base_digest):
        return f"its base moved: it was made over version {prop.base_version or 0}, the channel is at version {have_v or 0}"
    if site.now() >= parse_time(prop.pointer.expires):
        return f"its payload expired at {prop.pointer.expires}"
    return ""


def propose(site: Site, cur: Current, payload: bytes) -> Proposal:
    """Write the payload (signed by the site key) as ``proposals/<channel>.json``; a live proposal
    already there is a conflict (exit 3), a stale or published one is replaced."""
    channel = cur.channel
    old_bytes = site.store.read_file(proposal_path(channel))
    if old_bytes is not None:
        try:
            old = parse_proposal(site, channel, old_bytes)
            why = stale_reason(site, old, cur)
        except (BadInput, TrustError) as exc:
            why = f"unreadable ({exc})"
        if not why:
            p = old.pointer
            raise Conflict(
                f"{channel} already has an open proposal (version {p.version}, {p.action} {p.release[7:19]}, "
                f"{len(old.signed_by)} of {old.threshold} signatures): approve it first, or wait for it to expire"
            )
    prop = Proposal(
        channel,
        payload,
        [site.signing_key.sign(CHANNEL_TYPE, payload)],
        cur.pointer.version if cur.pointer else None,
        digest_bytes(cur.data) if cur.data is not None else None,
        site.actor,
        format_time(site.now()),
        approvals=[{"keyid": site.signing_key.id, "actor": site.actor, "time": format_time(site.now())}],
    )
    try:
        site.store.compare_and_swap(proposal_path(channel), old_bytes, prop.to_bytes())
    except Conflict:
        raise Conflict(f"{channel}: the proposal changed meanwhile; nothing written, run the command again") from None
    prop.threshold = site.trust.channel_threshold(channel)
    prop.signed_by = _counted(site, channel, payload, prop.signatures)
    return prop


@dataclass
class Approval:
    """The outcome of ``approve``: the proposal as it now stands, and the pointer if it was published."""

    proposal: Proposal
    published: Pointer | None

    def to_json(self) -> dict[str, Any]:
        doc = self.proposal.to_json()
        doc["published"] = self.published is not None
        if self.published is not None:
            doc.update(self.published.summary())
        return doc


def approve(site: Site, ref: str, channel: str, key: SigningKey) -> Approval:
    """Add ``key``'s signature to ``channel``'s open proposal of release ``ref``; publish the
    pointer when the distinct trusted signatures reach the channel's threshold."""
    from core.site.catalogue import resolve_release
    from core.site.channels import publish_envelope, read_current

    check_channel_name(channel)
    with site.action("approve", channel) as detail:
        release = resolve_release(site, ref)
        detail.update(release=release, key=key.id)
        prop = read_proposal(site, channel)
        if prop is None:
            raise NotFound(f"channel {channel} has no proposal to approve")
        ptr = prop.pointer
        if ptr.release != release:
            raise BadInput(
                f"the proposal on {channel} is for {ptr.release[7:19]} (version {ptr.version}), not {release[7:19]}"
            )
        cur = read_current(site, channel, None, for_update=True)
        why = stale_reason(site, prop, cur)
        if why:
            raise Conflict(f"the proposal on {channel} is stale: {why}; nothing published, promote again")
        tk = site.trust.keys.get(key.id)
        if tk is None:
            raise TrustError(f"key {key.id[:23]} is not in this site's trust set: 'console keys trust FILE' first")
        if tk.revoked:
            raise TrustError(f"key {key.id[:23]} is revoked")
        if "channel" not in tk.roles:
            raise TrustError(f"key {key.id[:23]} lacks the channel role")
        if key.id in prop.signed_by or any(s["keyid"] == key.id for s in prop.signatures):
            raise TrustError(
                f"key {key.id[:23]} already signed this proposal; the same key never counts twice "
                f"({len(prop.signed_by)} of {prop.threshold} signatures): approve with another key"
            )
        new = Proposal(
            channel,
            prop.payload,
            [*prop.signatures, key.sign(CHANNEL_TYPE, prop.payload)],
            prop.base_version,
            prop.base_digest,
            prop.proposed_by,
            prop.created,
            "open",
            [*prop.approvals, {"keyid": key.id, "actor": site.actor, "time": format_time(site.now())}],
            prop.threshold,
        )
        new.signed_by = _counted(site, channel, new.payload, new.signatures)
        detail.update(version=ptr.version, signatures=list(new.signed_by), threshold=new.threshold)
        published = None
        if len(new.signed_by) >= new.threshold:
            published = publish_envelope(site, cur, new.envelope_bytes())
            new.state = "published"
            detail.outcome = "published"
        try:
            site.store.compare_and_swap(proposal_path(channel), prop.data, new.to_bytes())
        except Conflict:
            if published is None:
                raise Conflict(
                    f"{channel}: the proposal changed meanwhile (another approval?); nothing written, run it again"
                ) from None
        new.data = new.to_bytes()
    return Approval(new, published)


def list_proposals(site: Site) -> list[Proposal]:
    """Every proposal in the store (open and published), by channel."""
    out = []
    for name in sorted(site.store.list_files("proposals")):
        if name.endswith(".json"):
            try:
                prop = read_proposal(site, name[:-5])
            except (BadInput, TrustError):
                continue
            if prop is not None:
                out.append(prop)
    return out
