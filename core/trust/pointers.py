"""Channel pointers as bytes: strict parsing and the verification rules (DESIGN §4).

``verify_pointer`` is one pure function over bytes, shared by nodes and the console: it knows
nothing of sites or databases, only the trust set and the caller's high-water mark for the
channel (last accepted version and the digest of those exact bytes). The write protocol lives in
``core.site.channels``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar

from core.clock import format_time, parse_time
from core.errors import BadInput, TrustError
from core.model.digest import digest_bytes, is_digest
from core.model.jsonio import loads as bounded_loads
from core.trust.signing import CHANNEL_TYPE, Envelope, TrustSet, parse_envelope, verify_envelope

POINTER_TYPE = "depot-channel"
POINTER_SCHEMA = 1
ACTIONS = ("promote", "rollback", "refresh")
FIELDS = {
    "type",
    "schema",
    "channel",
    "version",
    "release",
    "previous",
    "action",
    "reason",
    "actor",
    "issued",
    "expires",
}
#: Optional payload field of a rollout stage pointer (``<channel>.rollout``, issue 16): which
#: nodes the pointer is for. Pointers of ordinary channels never carry it.
AUDIENCE = "audience"
MAX_AUDIENCE_NODES = 1000
MAX_POINTER_BYTES = 64 << 10

# Rule names: every rejection message starts with one of these, followed by ": ".
MALFORMED = "malformed"
UNTRUSTED = "untrusted"
REVOKED = "revoked"
THRESHOLD = "threshold"
CHANNEL_MISMATCH = "channel mismatch"
REPLAY = "replay"
SAME_VERSION = "same version"
EXPIRED = "expired"
MISSING = "missing"


class PointerRejected(TrustError):
    """A pointer failed one verification rule (exit 4).

    Each rule is a subclass (catch ``Replay``, ``Expired``, ...); ``rule`` is its name, the word
    every message starts with (``"replay: ..."``), kept for JSON, the database and old callers.
    """

    rule: ClassVar[str] = ""

    def __init__(self, message: str) -> None:
        super().__init__(f"{self.rule}: {message}")


class MalformedPointer(PointerRejected):
    """The envelope or payload is not a well-formed pointer (size, JSON, fields, types)."""

    rule = MALFORMED


class UntrustedPointer(PointerRejected):
    """No signature is by a key the trust set knows."""

    rule = UNTRUSTED


class RevokedKey(PointerRejected):
    """The only known signing keys are revoked."""

    rule = REVOKED


class ThresholdNotMet(PointerRejected):
    """Trusted channel keys signed, but too few distinct ones (or bad signatures, a missing role)."""

    rule = THRESHOLD


class ChannelMismatch(PointerRejected):
    """A valid pointer for another channel than the file it was read from."""

    rule = CHANNEL_MISMATCH


class Replay(PointerRejected):
    """A version older than the one accepted before (a rollback attack or a stale mirror)."""

    rule = REPLAY


class SameVersion(PointerRejected):
    """The accepted version again, but with other bytes (a forked history)."""

    rule = SAME_VERSION


class Expired(PointerRejected):
    """The pointer's ``expires`` time has passed: someone must refresh the channel."""

    rule = EXPIRED


class MissingPointer(PointerRejected):
    """The pointer (or its history entry) is gone although a version was accepted before."""

    rule = MISSING


#: rule name -> its exception class.
RULES: dict[str, type[PointerRejected]] = {
    cls.rule: cls
    for cls in (
        MalformedPointer,
        UntrustedPointer,
        RevokedKey,
        ThresholdNotMet,
        ChannelMismatch,
        Replay,
        SameVersion,
        Expired,
        MissingPointer,
    )
}


def reject(rule: str, message: str) -> PointerRejected:
    """The exception for rule name ``rule`` (one of ``RULES``) with ``message``: ``raise reject(...)``."""
    return RULES[rule](message)


@dataclass(frozen=True)
class Pointer:
    """A parsed channel pointer plus the digest of the exact envelope bytes it came from."""

    channel: str
    version: int
    release: str
    previous: str | None
    action: str
    reason: str
    actor: str
    issued: str
    expires: str
    digest: str
    signed_by: tuple[str, ...] = ()
    audience: Audience | None = None

    def summary(self) -> dict[str, Any]:
        """The five keys scripts rely on (``rollback … --json``)."""
        return {
            "channel": self.channel,
            "version": self.version,
            "release": self.release,
            "previous": self.previous,
            "action": self.action,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "reason": self.reason,
            "actor": self.actor,
            "issued": self.issued,
            "expires": self.expires,
            "digest": self.digest,
            "signed_by": list(self.signed_by),
        }

    def seconds_left(self, now: datetime) -> int:
        return int((parse_time(self.expires) - now).total_seconds())


@dataclass(frozen=True)
class Audience:
    """The nodes a rollout stage pointer is for: named ``nodes`` (the canary set) and every node
    whose stable hash bucket (`node_bucket`) is below ``percent``, while the channel itself still
    carries ``base`` (a stage pointer over another base is stale and followed by no one)."""

    base: str
    nodes: tuple[str, ...]
    percent: float
    salt: str

    def to_json(self) -> dict[str, Any]:
        return {"base": self.base, "nodes": list(self.nodes), "percent": self.percent, "salt": self.salt}

    def includes(self, node: str) -> bool:
        return node in self.nodes or node_bucket(self.salt, node) < self.percent


def node_bucket(salt: str, node: str) -> float:
    """A node's place in [0, 100): the first 8 bytes of sha256(salt NUL name), stable across
    runs and hosts, so the nodes in ``percent`` % are the same ones for console and node, and
    the 25 % of a rollout are among its 50 %."""
    import hashlib

    h = hashlib.sha256(salt.encode() + b"\0" + node.encode()).digest()
    return int.from_bytes(h[:8], "big") % 10000 / 100


def _audience(value: Any, where: str) -> Audience:
    if not isinstance(value, dict) or set(value) != {"base", "nodes", "percent", "salt"}:
        raise MalformedPointer(f"{where}: audience must be an object with base, nodes, percent, salt")
    nodes, percent = value["nodes"], value["percent"]
    if not is_digest(value["base"]) or not isinstance(value["salt"], str) or len(value["salt"]) > 256:
        raise MalformedPointer(f"{where}: audience base must be a digest, salt a string")
    if (
        not isinstance(nodes, list)
        or len(nodes) > MAX_AUDIENCE_NODES
        or not all(isinstance(n, str) and 0 < len(n) <= 255 for n in nodes)
    ):
        raise MalformedPointer(f"{where}: audience nodes must be at most {MAX_AUDIENCE_NODES} names")
    if not isinstance(percent, (int, float)) or isinstance(percent, bool) or not 0 <= percent <= 100:
        raise MalformedPointer(f"{where}: audience percent must be a number from 0 to 100")
    return Audience(value["base"], tuple(nodes), float(percent), value["salt"])


# -- verification (pure: bytes + trust + high-water mark) -----------------------------------------
def pointer_envelope(data: bytes, where: str) -> Envelope:
    if len(data) > MAX_POINTER_BYTES:
        raise MalformedPointer(f"{where} is larger than {MAX_POINTER_BYTES} bytes")
    try:
        return parse_envelope(data, where)
    except BadInput as exc:
        raise MalformedPointer(str(exc)) from None


def pointer_signatures(env: Envelope, trust: TrustSet, where: str, channel: str | None = None) -> tuple[str, ...]:
    """Key ids that count for the channel role; a rejection names why the threshold was missed.

    With ``channel``, that channel's own threshold applies (``TrustSet.channel_threshold``)."""
    need = trust.channel_threshold(channel) if channel is not None else None
    try:
        return tuple(verify_envelope(env, CHANNEL_TYPE, "channel", trust, where, need))
    except TrustError as exc:
        if env.payload_type != CHANNEL_TYPE:
            raise MalformedPointer(str(exc)) from None
        keys = [trust.keys.get(s["keyid"]) for s in env.signatures]
        usable = {k.id for k in keys if k is not None and not k.revoked and "channel" in k.roles}
        rejected: type[PointerRejected]
        if usable:  # some trusted signature(s), but not enough distinct keys
            rejected = ThresholdNotMet
        elif any(k is not None and k.revoked for k in keys):
            rejected = RevokedKey
        elif env.signatures and all(k is not None for k in keys):
            rejected = ThresholdNotMet  # trusted keys, but bad signatures or a missing role
        else:
            rejected = UntrustedPointer
        raise rejected(str(exc)) from None


def _text(doc: dict[str, Any], key: str, where: str, maxlen: int = 1024) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or len(value) > maxlen:
        raise MalformedPointer(f"{where}: field {key!r} must be a string")
    return value


def parse_pointer_payload(payload: bytes, digest: str, where: str = "pointer") -> Pointer:
    """Strictly parse pointer payload bytes (signatures are checked separately)."""
    try:
        doc = bounded_loads(payload, where, error=MalformedPointer)
    except (ValueError, UnicodeDecodeError):
        raise MalformedPointer(f"{where}: payload is not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("type") != POINTER_TYPE:
        raise MalformedPointer(f"{where}: not a {POINTER_TYPE} payload")
    if doc.get("schema") != POINTER_SCHEMA:
        raise MalformedPointer(f"{where}: unsupported pointer schema {doc.get('schema')!r}")
    if set(doc) not in (FIELDS, FIELDS | {AUDIENCE}):
        raise MalformedPointer(f"{where}: fields {sorted(set(doc) ^ FIELDS)} missing or unknown")
    version = doc["version"]
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < 10**18:
        raise MalformedPointer(f"{where}: version must be a positive integer")
    release, previous = doc["release"], doc["previous"]
    if not is_digest(release) or not (previous is None or is_digest(previous)):
        raise MalformedPointer(f"{where}: release/previous must be sha256 digests")
    if doc["action"] not in ACTIONS:
        raise MalformedPointer(f"{where}: unknown action {doc['action']!r}")
    times = {}
    for key in ("issued", "expires"):
        try:
            times[key] = format_time(parse_time(_text(doc, key, where, 40)))
        except BadInput:
            raise MalformedPointer(f"{where}: {key} is not an ISO 8601 time") from None
    return Pointer(
        _text(doc, "channel", where, 64),
        version,
        release,
        previous,
        doc["action"],
        _text(doc, "reason", where),
        _text(doc, "actor", where, 256),
        times["issued"],
        times["expires"],
        digest,
        audience=_audience(doc[AUDIENCE], where) if AUDIENCE in doc else None,
    )


def check_high_water(ptr: Pointer, last_version: int | None, last_digest: str | None) -> None:
    """Reject a version below the accepted one, or the accepted version with other bytes."""
    if last_version is None:
        return
    if ptr.version < last_version:
        raise Replay(f"{ptr.channel} pointer version {ptr.version} is older than accepted version {last_version}")
    if ptr.version == last_version and last_digest and ptr.digest != last_digest:
        raise SameVersion(
            f"{ptr.channel} pointer version {ptr.version} differs from the "
            f"version {last_version} accepted before ({ptr.digest[7:19]} != "
            f"{last_digest[7:19]})"
        )


def check_expiry(ptr: Pointer, now: datetime) -> None:
    if now >= parse_time(ptr.expires):
        raise Expired(
            f"{ptr.channel} pointer version {ptr.version} expired at {ptr.expires} (now {format_time(now)}): refresh it"
        )


def verify_pointer(
    data: bytes, channel: str, trust: TrustSet, last_version: int | None, last_digest: str | None, now: datetime | None
) -> Pointer:
    """Accept the pointer ``data`` read from channel ``channel``'s file, or raise a ``PointerRejected``.

    Rules, in order (the subclass raised): well-formed envelope (``MalformedPointer``); enough
    distinct trusted, unrevoked channel keys (``UntrustedPointer``/``RevokedKey``/``ThresholdNotMet``);
    well-formed payload; its ``channel`` field equals ``channel`` (``ChannelMismatch``); not older
    than ``last_version`` (``Replay``); not ``last_version`` with bytes other than ``last_digest``
    (``SameVersion``); not expired at ``now`` (``Expired``; ``now=None`` skips only this rule, for
    callers that must read a frozen channel to replace it).
    """
    where = f"{channel} pointer"
    env = pointer_envelope(data, where)
    signed_by = pointer_signatures(env, trust, where, channel)
    ptr = replace(parse_pointer_payload(env.payload, digest_bytes(data), where), signed_by=signed_by)
    if ptr.channel != channel:
        raise ChannelMismatch(f"pointer for channel {ptr.channel!r} found at {channel!r}")
    check_high_water(ptr, last_version, last_digest)
    if now is not None:
        check_expiry(ptr, now)
    return ptr
