"""The release catalogue: load and verify releases, resolve short ids, keep the index and the
database's catalogue cache in step with the store (which stays the truth).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from core.errors import BadInput, Conflict, NotFound, TrustError
from core.model.digest import canonical_json, resolve_release_ref
from core.model.manifest import DEFAULT_MAX_MANIFEST_BYTES, Release
from core.store.base import Store, release_path
from core.trust.releases import release_from_envelope
from core.trust.signing import INDEX_TYPE, TrustSet, make_envelope

if TYPE_CHECKING:  # the Site (and SQLite) is not needed by nodes, which only verify envelopes
    from core.site.site import Site


def load_release(site: Site, release_id: str) -> Release:
    """Read a release envelope, check that its payload hashes to its name, verify signatures, parse.

    ``NotFound`` if absent; ``TrustError`` if the payload was edited (hash differs from the file
    name) or the signatures do not meet the release threshold; ``BadInput`` if malformed.
    """
    return load_release_from(site.store, site.trust, release_id, site.config.publish.max_manifest_bytes)


def load_release_from(
    store: Store, trust: TrustSet, release_id: str, max_bytes: int = DEFAULT_MAX_MANIFEST_BYTES
) -> Release:
    """``load_release`` without a Site: a store and a trust set (what a node has)."""
    data = store.read_file(release_path(release_id))
    if data is None:
        raise NotFound(f"release {release_id} not found in store")
    return release_from_envelope(data, trust, release_id, max_bytes)


def _row(site: Site, rel: Release) -> dict:
    from core.clock import format_time

    return {
        "id": rel.id,
        "name": rel.name,
        "label": rel.label,
        "created": rel.created,
        "parent": rel.parent or "",
        "images": json.dumps(sorted(rel.images)),
        "bytes": rel.total_bytes,
        "files": rel.total_files,
        "packages": len(rel.packages),
        "signed_by": json.dumps(rel.signed_by),
        "seen_at": format_time(site.now()),
    }


def sync_catalogue(site: Site, only: list[str] | None = None) -> list[str]:
    """Bring the database's release cache in line with the store; return problems (one line each).

    Releases that fail verification are left out of the cache and reported; releases gone from
    the store are dropped from it.
    """
    problems: list[str] = []
    if only is None:
        in_store = set(site.store.list_release_ids())
        known = site.state.known_release_ids()
        site.state.delete_releases(known - in_store)
        todo = sorted(in_store - known)
    else:
        todo = only
    rows = []
    for rid in todo:
        try:
            rows.append(_row(site, load_release(site, rid)))
        except (TrustError, BadInput) as exc:
            problems.append(str(exc))
    site.state.upsert_releases(rows)
    return problems


def resolve_release(site: Site, ref: str) -> str:
    """A full id from ``sha256:<hex>``, bare hex, or a unique hex prefix of at least 4 characters."""

    def matches(prefix: str) -> list[str]:  # the database cache, synced with the store on a miss
        hits = site.state.release_ids_with_prefix(prefix)
        if not hits:
            sync_catalogue(site)
            hits = site.state.release_ids_with_prefix(prefix)
        return hits

    return resolve_release_ref(ref, matches, exists=lambda rid: site.store.read_file(release_path(rid)) is not None)


def list_releases(site: Site, name: str | None = None) -> list[dict]:
    """Catalogue rows (newest first) after syncing with the store."""
    sync_catalogue(site)
    return site.state.release_rows(name=name)


def index_payload(site: Site, rows: list[dict]) -> bytes:
    """The index catalogue from database rows (each verified when it entered the cache)."""
    from core.clock import format_time

    entries = [
        {
            "id": r["id"],
            "name": r["name"],
            "label": r["label"],
            "created": r["created"],
            "images": json.loads(r["images"]),
            "bytes": r["bytes"],
        }
        for r in rows
    ]
    entries.sort(key=lambda e: (e["created"], e["id"]))
    return canonical_json({"type": "depot-index", "schema": 1, "updated": format_time(site.now()), "releases": entries})


def update_index(site: Site, attempts: int = 20) -> None:
    """Rewrite ``index.json`` from ``releases/`` by compare-and-swap, retrying on a race.

    The index is derived data, so a lost race is simply recomputed: ``releases/`` is the truth.
    """
    store = site.store
    for _ in range(attempts):
        current = store.read_file("index.json")
        sync_catalogue(site)
        envelope = make_envelope(INDEX_TYPE, index_payload(site, site.state.release_rows()), [site.signing_key])
        try:
            store.compare_and_swap("index.json", current, envelope)
            return
        except Conflict:
            continue
    raise Conflict("index.json kept moving meanwhile; run the command again")
