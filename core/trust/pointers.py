"""Channel pointers as bytes: strict parsing and the verification rules (DESIGN §4).

``verify_pointer`` is one pure function over bytes, shared by nodes and the console: it knows
nothing of sites or databases, only the trust set and the caller's high-water mark for the
channel (last accepted version and the digest of those exact bytes). The write protocol lives in
``core.site.channels``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime

from core.clock import format_time, parse_time
from core.errors import BadInput, TrustError
from core.model.digest import digest_bytes, is_digest
from core.trust.signing import CHANNEL_TYPE, Envelope, TrustSet, parse_envelope, verify_envelope

POINTER_TYPE = "depot-channel"
POINTER_SCHEMA = 1
ACTIONS = ("promote", "rollback", "refresh")
FIELDS = {"type", "schema", "channel", "version", "release", "previous", "action", "reason", "actor",
          "issued", "expires"}
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
    """A pointer failed one verification rule (exit 4); ``rule`` names it."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule


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

    def summary(self) -> dict:
        """The five keys scripts rely on (``rollback … --json``)."""
        return {"channel": self.channel, "version": self.version, "release": self.release,
                "previous": self.previous, "action": self.action}

    def to_json(self) -> dict:
        return {**self.summary(), "reason": self.reason, "actor": self.actor, "issued": self.issued,
                "expires": self.expires, "digest": self.digest, "signed_by": list(self.signed_by)}

    def seconds_left(self, now: datetime) -> int:
        return int((parse_time(self.expires) - now).total_seconds())


# -- verification (pure: bytes + trust + high-water mark) -----------------------------------------
def pointer_envelope(data: bytes, where: str) -> Envelope:
    if len(data) > MAX_POINTER_BYTES:
        raise PointerRejected(MALFORMED, f"{where} is larger than {MAX_POINTER_BYTES} bytes")
    try:
        return parse_envelope(data, where)
    except BadInput as exc:
        raise PointerRejected(MALFORMED, str(exc)) from None


def pointer_signatures(env: Envelope, trust: TrustSet, where: str) -> tuple[str, ...]:
    """Key ids that count for the channel role; a rejection names why the threshold was missed."""
    try:
        return tuple(verify_envelope(env, CHANNEL_TYPE, "channel", trust, where))
    except TrustError as exc:
        if env.payload_type != CHANNEL_TYPE:
            raise PointerRejected(MALFORMED, str(exc)) from None
        keys = [trust.keys.get(s["keyid"]) for s in env.signatures]
        usable = {k.id for k in keys if k is not None and not k.revoked and "channel" in k.roles}
        if usable:  # some trusted signature(s), but not enough distinct keys
            rule = THRESHOLD
        elif any(k is not None and k.revoked for k in keys):
            rule = REVOKED
        elif env.signatures and all(k is not None for k in keys):
            rule = THRESHOLD  # trusted keys, but bad signatures or a missing role
        else:
            rule = UNTRUSTED
        raise PointerRejected(rule, str(exc)) from None


def _text(doc: dict, key: str, where: str, maxlen: int = 1024) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or len(value) > maxlen:
        raise PointerRejected(MALFORMED, f"{where}: field {key!r} must be a string")
    return value


def parse_pointer_payload(payload: bytes, digest: str, where: str = "pointer") -> Pointer:
    """Strictly parse pointer payload bytes (signatures are checked separately)."""
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise PointerRejected(MALFORMED, f"{where}: payload is not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("type") != POINTER_TYPE:
        raise PointerRejected(MALFORMED, f"{where}: not a {POINTER_TYPE} payload")
    if doc.get("schema") != POINTER_SCHEMA:
        raise PointerRejected(MALFORMED, f"{where}: unsupported pointer schema {doc.get('schema')!r}")
    if set(doc) != FIELDS:
        raise PointerRejected(MALFORMED, f"{where}: fields {sorted(set(doc) ^ FIELDS)} missing or unknown")
    version = doc["version"]
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < 10**18:
        raise PointerRejected(MALFORMED, f"{where}: version must be a positive integer")
    release, previous = doc["release"], doc["previous"]
    if not is_digest(release) or not (previous is None or is_digest(previous)):
        raise PointerRejected(MALFORMED, f"{where}: release/previous must be sha256 digests")
    if doc["action"] not in ACTIONS:
        raise PointerRejected(MALFORMED, f"{where}: unknown action {doc['action']!r}")
    times = {}
    for key in ("issued", "expires"):
        try:
            times[key] = format_time(parse_time(_text(doc, key, where, 40)))
        except BadInput:
            raise PointerRejected(MALFORMED, f"{where}: {key} is not an ISO 8601 time") from None
    return Pointer(_text(doc, "channel", where, 64), version, release, previous, doc["action"],
                   _text(doc, "reason", where), _text(doc, "actor", where, 256), times["issued"],
                   times["expires"], digest)


def check_high_water(ptr: Pointer, last_version: int | None, last_digest: str | None) -> None:
    """Reject a version below the accepted one, or the accepted version with other bytes."""
    if last_version is None:
        return
    if ptr.version < last_version:
        raise PointerRejected(REPLAY, f"{ptr.channel} pointer version {ptr.version} is older than accepted "
                                      f"version {last_version}")
    if ptr.version == last_version and last_digest and ptr.digest != last_digest:
        raise PointerRejected(SAME_VERSION, f"{ptr.channel} pointer version {ptr.version} differs from the "
                                            f"version {last_version} accepted before ({ptr.digest[7:19]} != "
                                            f"{last_digest[7:19]})")


def check_expiry(ptr: Pointer, now: datetime) -> None:
    if now >= parse_time(ptr.expires):
        raise PointerRejected(EXPIRED, f"{ptr.channel} pointer version {ptr.version} expired at {ptr.expires} "
                                       f"(now {format_time(now)}): refresh it")


def verify_pointer(data: bytes, channel: str, trust: TrustSet, last_version: int | None,
                   last_digest: str | None, now: datetime | None) -> Pointer:
    """Accept the pointer ``data`` read from channel ``channel``'s file, or raise ``PointerRejected``.

    Rules, in order: well-formed envelope; enough distinct trusted, unrevoked channel keys
    (``untrusted``/``revoked``/``threshold``); well-formed payload; its ``channel`` field equals
    ``channel``; not older than ``last_version`` (``replay``); not ``last_version`` with bytes other
    than ``last_digest`` (``same version``); not expired at ``now`` (``now=None`` skips only this
    rule, for callers that must read a frozen channel to replace it).
    """
    where = f"{channel} pointer"
    env = pointer_envelope(data, where)
    signed_by = pointer_signatures(env, trust, where)
    ptr = replace(parse_pointer_payload(env.payload, digest_bytes(data), where), signed_by=signed_by)
    if ptr.channel != channel:
        raise PointerRejected(CHANNEL_MISMATCH, f"pointer for channel {ptr.channel!r} found at {channel!r}")
    check_high_water(ptr, last_version, last_digest)
    if now is not None:
        check_expiry(ptr, now)
    return ptr
