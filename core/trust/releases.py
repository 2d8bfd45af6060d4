"""Release envelopes as bytes: verify (payload hash = id, signatures) and parse (DSSE, DESIGN §3-4).

What a node needs to trust a release, without a site or a database; ``core.site.catalogue`` adds
the site's view (short ids, the index, the database cache).
"""

from __future__ import annotations

from core.errors import TrustError
from core.model.digest import digest_bytes, short
from core.model.manifest import DEFAULT_MAX_MANIFEST_BYTES, Release, parse_payload
from core.trust.signing import RELEASE_TYPE, TrustSet, parse_envelope, verify_envelope


class PayloadMismatch(TrustError):
    """A release envelope's payload does not hash to the release id it is stored under (edited?)."""


def release_from_envelope(
    data: bytes, trust: TrustSet, release_id: str, max_bytes: int = DEFAULT_MAX_MANIFEST_BYTES
) -> Release:
    """Verify envelope bytes of ``release_id`` (payload hash = id, signatures) and parse them."""
    where = f"release {short(release_id)}"
    env = parse_envelope(data, where)
    actual = digest_bytes(env.payload)
    if actual != release_id:
        raise PayloadMismatch(f"{where}: payload hash {short(actual)} does not match its file name (edited?)")
    signed_by = verify_envelope(env, RELEASE_TYPE, "release", trust, where)
    return parse_payload(env.payload, release_id, signed_by, max_bytes)
