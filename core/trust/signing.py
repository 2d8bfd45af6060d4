"""Ed25519 keys, DSSE envelopes and the site's trust set (DESIGN §4).

Verification works on the exact stored bytes: the envelope is parsed, the base64 payload decoded,
and signatures checked over the DSSE pre-authentication encoding of those payload bytes. Nothing
is re-serialized before verifying. Only distinct trusted, unrevoked key ids with the right role
count toward a role's threshold.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ``cryptography.hazmat.primitives.serialization`` (PEM, PKCS8: ~10 ms to import) is imported where
# keys are written or read from PEM, not by every verb that only verifies (issue 17 item 3).
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.durable import ensure_dir
from core.environ import PASSPHRASE_ENV
from core.errors import BadInput, NotFound, TrustError
from core.model.jsonio import loads as bounded_loads

RELEASE_TYPE = "application/vnd.depot-console.release+json"
CHANNEL_TYPE = "application/vnd.depot-console.channel+json"
INDEX_TYPE = "application/vnd.depot-console.index+json"
ROLES = ("release", "channel")
MAX_ENVELOPE_BYTES = 64 << 20


def _take_passphrase() -> bytes | None:
    """``$DEPOT_KEY_PASSPHRASE``, read once (when this module is imported) and removed from
    ``os.environ``, so that no child process (build, tool, hook) inherits it."""
    value = os.environ.pop(PASSPHRASE_ENV, None)
    return value.encode() if value else None


_PASSPHRASE = _take_passphrase()


def passphrase_env() -> dict[str, str]:
    """``{"DEPOT_KEY_PASSPHRASE": ...}`` when one was given, else ``{}``: for the one child that
    signs for this process (the console's own build worker), passed explicitly, never inherited."""
    return {PASSPHRASE_ENV: _PASSPHRASE.decode()} if _PASSPHRASE else {}


def key_id(public: Ed25519PublicKey) -> str:
    """``sha256:`` + sha256 of the raw 32-byte public key."""
    return "sha256:" + hashlib.sha256(public.public_bytes_raw()).hexdigest()


def public_b64(public: Ed25519PublicKey) -> str:
    """Raw public key, base64 (how the trust set stores it)."""
    return base64.b64encode(public.public_bytes_raw()).decode()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass
class SigningKey:
    """A private Ed25519 key loaded from a PKCS8 PEM file."""

    private: Ed25519PrivateKey
    path: Path | None = None

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def id(self) -> str:
        return key_id(self.public)

    def sign(self, payload_type: str, payload: bytes) -> dict[str, str]:
        """One DSSE signature entry for ``payload``."""
        sig = self.private.sign(pae(payload_type, payload))
        return {"keyid": self.id, "sig": base64.b64encode(sig).decode()}


def generate_key(path: Path, passphrase: bytes | None = None) -> SigningKey:
    """Create a new key file (PKCS8 PEM, mode 0600, never overwritten; a directory it creates
    for it gets 0700), whatever the umask."""
    from cryptography.hazmat.primitives import serialization

    private = Ed25519PrivateKey.generate()
    enc = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    ensure_dir(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(pem)
    return SigningKey(private, path)


def load_key(path: Path, passphrase: bytes | None = None) -> SigningKey:
    """Load a private key; one clear error for missing, unreadable, encrypted or wrong-type files."""
    from cryptography.hazmat.primitives import serialization

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise NotFound(f"signing key {path} not found") from None
    except OSError as exc:
        raise BadInput(f"cannot read signing key {path}: {exc.strerror}") from None
    if passphrase is None:
        passphrase = _PASSPHRASE
    try:
        private = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError:
        raise BadInput(f"signing key {path} is encrypted: set {PASSPHRASE_ENV}") from None
    except ValueError:
        raise BadInput(f"signing key {path} is not a valid PKCS8 PEM key (or wrong passphrase)") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise BadInput(f"signing key {path} is not an Ed25519 key")
    return SigningKey(private, Path(path))


def load_public_key(data: str) -> Ed25519PublicKey:
    """A public key from base64 raw bytes or a PEM SubjectPublicKeyInfo."""
    text = data.strip()
    try:
        if text.startswith("-----BEGIN"):
            from cryptography.hazmat.primitives import serialization

            pub = serialization.load_pem_public_key(text.encode())
            if not isinstance(pub, Ed25519PublicKey):
                raise BadInput("public key is not an Ed25519 key")
            return pub
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error):
        raise BadInput("not an Ed25519 public key (expected PEM or base64 of 32 raw bytes)") from None


def public_pem(public: Ed25519PublicKey) -> str:
    """PEM SubjectPublicKeyInfo text, for `keys trust FILE` on another site or node."""
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass
class TrustedKey:
    """One entry of the trust set."""

    id: str
    public: Ed25519PublicKey
    roles: tuple[str, ...]
    revoked: bool = False
    name: str = ""


@dataclass
class TrustSet:
    """Public keys with roles, and a signature threshold per role."""

    keys: dict[str, TrustedKey] = field(default_factory=dict)
    thresholds: dict[str, int] = field(default_factory=lambda: {"release": 1, "channel": 1})

    def add(self, public: Ed25519PublicKey, roles: tuple[str, ...] = ROLES, name: str = "") -> TrustedKey:
        kid = key_id(public)
        tk = TrustedKey(kid, public, tuple(roles), False, name)
        self.keys[kid] = tk
        return tk

    def to_config(self) -> dict[str, Any]:
        """The ``[trust]`` table of console.toml (and of a node's trust file)."""
        return {
            "thresholds": dict(self.thresholds),
            "keys": [
                {
                    "id": k.id,
                    "public": public_b64(k.public),
                    "roles": list(k.roles),
                    "revoked": k.revoked,
                    "name": k.name,
                }
                for k in self.keys.values()
            ],
        }

    @classmethod
    def from_config(cls, table: dict[str, Any]) -> TrustSet:
        """Parse a ``[trust]`` table; a key whose id does not match its bytes is refused."""
        ts = cls()
        if not isinstance(table, dict):
            raise BadInput("trust set: expected a table")
        thresholds = table.get("thresholds", {})
        if not isinstance(thresholds, dict):
            raise BadInput("trust set: thresholds must be a table")
        for role in ROLES:
            value = thresholds.get(role, 1)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise BadInput(f"trust set: threshold for {role} must be a positive integer")
            ts.thresholds[role] = value
        for name, value in thresholds.items():  # per channel: "channel:<name>" = N (co-signing, issue 16)
            if name in ROLES:
                continue
            if not (isinstance(name, str) and name.startswith("channel:") and len(name) > 8):
                raise BadInput(f"trust set: unknown threshold {name!r} (roles, or 'channel:<name>')")
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise BadInput(f"trust set: threshold for {name} must be a positive integer")
            ts.thresholds[name] = value
        for entry in table.get("keys", []):
            if not isinstance(entry, dict) or not isinstance(entry.get("public"), str):
                raise BadInput("trust set: each key needs a 'public' string")
            pub = load_public_key(entry["public"])
            kid = key_id(pub)
            if entry.get("id", kid) != kid:
                raise BadInput(f"trust set: key id {entry.get('id')} does not match its public key ({kid})")
            roles = entry.get("roles", list(ROLES))
            if not isinstance(roles, list) or any(r not in ROLES for r in roles):
                raise BadInput(f"trust set: key {kid} has unknown roles {roles!r}")
            ts.keys[kid] = TrustedKey(
                kid, pub, tuple(roles), bool(entry.get("revoked", False)), str(entry.get("name", ""))
            )
        return ts

    def channel_threshold(self, channel: str) -> int:
        """Distinct channel-key signatures a pointer of ``channel`` needs: ``thresholds["channel:<name>"]``
        if set, else the ``channel`` role's threshold."""
        return self.thresholds.get(f"channel:{channel}", self.thresholds.get("channel", 1))

    def find(self, prefix: str) -> TrustedKey:
        """A key by full id or unique hex prefix."""
        p = prefix.removeprefix("sha256:").lower()
        hits = [k for k in self.keys.values() if k.id[7:].startswith(p)]
        if not p or not hits:
            raise NotFound(f"no trusted key {prefix}")
        if len(hits) > 1:
            raise BadInput(f"key id {prefix} is ambiguous: {', '.join(k.id[:19] for k in hits)}")
        return hits[0]


@dataclass
class Envelope:
    """A parsed DSSE envelope: its payload bytes and signature list, as stored."""

    payload_type: str
    payload: bytes
    signatures: list[dict[str, Any]]


def make_envelope(payload_type: str, payload: bytes, keys: list[SigningKey]) -> bytes:
    """Serialize a DSSE envelope signed by ``keys``."""
    env = {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [k.sign(payload_type, payload) for k in keys],
    }
    return json.dumps(env, indent=1, sort_keys=True).encode() + b"\n"


def parse_envelope(data: bytes, what: str = "envelope") -> Envelope:
    """Strictly parse envelope bytes; ``BadInput`` for anything malformed."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise BadInput(f"{what}: larger than {MAX_ENVELOPE_BYTES} bytes, refused")
    try:
        env = bounded_loads(data, what)  # refuses deep nesting before parsing (one line, exit 2)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"{what}: not valid JSON ({exc})") from None
    if not isinstance(env, dict):
        raise BadInput(f"{what}: not a DSSE envelope")
    ptype, payload_b64, sigs = env.get("payloadType"), env.get("payload"), env.get("signatures")
    if not isinstance(ptype, str) or not isinstance(payload_b64, str) or not isinstance(sigs, list):
        raise BadInput(f"{what}: not a DSSE envelope (payloadType, payload, signatures)")
    try:
        payload = base64.b64decode(payload_b64, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(f"{what}: payload is not valid base64") from None
    for s in sigs:
        if not isinstance(s, dict) or not isinstance(s.get("keyid"), str) or not isinstance(s.get("sig"), str):
            raise BadInput(f"{what}: malformed signature entry")
    return Envelope(ptype, payload, sigs)


def verify_envelope(
    env: Envelope, payload_type: str, role: str, trust: TrustSet, what: str = "envelope", need: int | None = None
) -> list[str]:
    """Check type and signatures against ``trust`` for ``role``; return the key ids that counted.

    Raises ``TrustError`` if fewer distinct trusted, unrevoked keys with ``role`` signed validly
    than the role's threshold (or ``need``, when given: a channel's own threshold).
    """
    if env.payload_type != payload_type:
        raise TrustError(f"{what}: payload type {env.payload_type!r}, expected {payload_type!r}")
    message = pae(env.payload_type, env.payload)
    good: set[str] = set()
    problems: list[str] = []
    for s in env.signatures:
        tk = trust.keys.get(s["keyid"])
        if tk is None:
            problems.append(f"untrusted key {s['keyid'][:19]}")
            continue
        if tk.revoked:
            problems.append(f"revoked key {tk.id[:19]}")
            continue
        if role not in tk.roles:
            problems.append(f"key {tk.id[:19]} lacks role {role}")
            continue
        try:
            tk.public.verify(base64.b64decode(s["sig"], validate=True), message)
        except (InvalidSignature, binascii.Error, ValueError):
            problems.append(f"bad signature by {tk.id[:19]}")
            continue
        good.add(tk.id)
    need = need if need is not None else trust.thresholds.get(role, 1)
    if len(good) < need:
        detail = "; ".join(problems) if problems else "no signatures"
        raise TrustError(f"{what}: {len(good)} of {need} required {role} signature(s) ({detail})")
    return sorted(good)
