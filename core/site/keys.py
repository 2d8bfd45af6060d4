"""Key management for a site: list, generate (rotation), trust, revoke, re-sign releases.

Rotation is: ``generate`` a new key (trusted and used for signing from now on), ``resign`` the
releases so they carry its signature too, then ``revoke`` the old key. A revoked key stays in the
trust set, marked, so its signatures are rejected rather than merely unknown.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.durable import atomic_write
from core.errors import BadInput, DepotError, NotFound
from core.site.catalogue import load_release, resolve_release
from core.site.site import Site
from core.store.base import release_path
from core.trust.signing import (
    RELEASE_TYPE,
    ROLES,
    TrustSet,
    generate_key,
    key_id,
    load_public_key,
    parse_envelope,
    public_pem,
)


def _roles(roles: tuple[str, ...]) -> tuple[str, ...]:
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise BadInput(f"unknown role(s) {', '.join(bad) or '(none)'}: roles are {', '.join(ROLES)}")
    return roles


def list_keys(site: Site) -> list[dict]:
    signing = site.signing_key_id()
    return [
        {
            "id": k.id,
            "roles": list(k.roles),
            "name": k.name,
            "state": "revoked" if k.revoked else ("signing" if k.id == signing else "trusted"),
        }
        for k in site.trust.keys.values()
    ]


def generate(site: Site, roles: tuple[str, ...] = ROLES, switch: bool = True) -> dict:
    """Create a key under ``keys/``, trust it for ``roles``, and (by default) sign with it from now on."""
    roles = _roles(roles)
    with site.action("keys generate", ",".join(roles)) as detail:
        keydir = site.root / "keys"
        n = 1
        while (keydir / f"signing-{n}.pem").exists():
            n += 1
        path = keydir / f"signing-{n}.pem"
        key = generate_key(path)
        site.trust.add(key.public, roles, name=path.stem)
        if switch:
            site.config.set("site", "signing_key", str(path.relative_to(site.root)))
            site._key = key
        site.save_trust()
        atomic_write(keydir / f"{path.stem}.pub.pem", public_pem(key.public).encode(), 0o644, durable=False)
        detail["key"] = key.id
    return {"id": key.id, "path": str(path), "roles": list(roles), "signing": switch}


def trust_file(site: Site, file: Path, roles: tuple[str, ...], name: str = "") -> dict:
    roles = _roles(roles)
    try:
        text = Path(file).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NotFound(f"cannot read public key file {file}: {exc}") from None
    pub = load_public_key(text)
    with site.action("keys trust", key_id(pub)):
        existing = site.trust.keys.get(key_id(pub))
        if existing and existing.revoked:
            raise BadInput(f"key {existing.id} was revoked; generate a new key instead of trusting it again")
        site.trust.add(pub, roles, name=name or Path(file).stem)
        site.save_trust()
    return {"id": key_id(pub), "roles": list(roles)}


def revoke_impact(site: Site, key: str) -> dict[str, list[str]]:
    """What revoking trusted key ``key`` (a full id) would break: the channels whose current pointer
    and the releases whose envelope verify today but would miss their threshold without it."""
    from core.site.channels import known_channels
    from core.store.base import channel_path
    from core.trust.pointers import PointerRejected, verify_pointer
    from core.trust.releases import release_from_envelope

    trial = TrustSet.from_config(site.trust.to_config())
    trial.keys[key].revoked = True
    limit = site.config.publish.max_manifest_bytes
    channels, releases = [], []
    for ch in known_channels(site):
        data = site.store.read_file(channel_path(ch))
        if data is None:
            continue
        try:
            verify_pointer(data, ch, site.trust, None, None, None)
        except PointerRejected:
            continue  # broken already: not this revocation's doing
        try:
            verify_pointer(data, ch, trial, None, None, None)
        except PointerRejected:
            channels.append(ch)
    for rid in sorted(site.store.list_release_ids()):
        data = site.store.read_file(release_path(rid))
        if data is None:
            continue
        try:
            release_from_envelope(data, site.trust, rid, limit)
        except DepotError:
            continue
        try:
            release_from_envelope(data, trial, rid, limit)
        except DepotError:
            releases.append(rid)
    return {"channels": channels, "releases": releases}


def impact_text(impact: dict[str, list[str]]) -> str:
    parts = []
    if impact["channels"]:
        parts.append(f"channel(s) {', '.join(impact['channels'])}")
    if impact["releases"]:
        rels = impact["releases"]
        shown = ", ".join(r[7:19] for r in rels[:5]) + (", …" if len(rels) > 5 else "")
        parts.append(f"{len(rels)} release(s) ({shown})")
    return " and ".join(parts)


def revoke(site: Site, ref: str, *, resign_first: bool = False, force: bool = False) -> dict:
    """Revoke trusted key ``ref``: its signatures stop counting at once, for this console and for
    the nodes given the exported trust set.

    When that would leave current channel pointers or releases without enough trusted signatures
    (`revoke_impact`), it refuses naming them, unless ``resign_first`` (re-sign those releases with
    the signing key and refresh those channels, then revoke) or ``force`` (revoke anyway: the
    result's ``breaks`` says what no longer verifies; a release signed only by a revoked key cannot
    be re-signed afterwards).
    """
    from core.site.channels import refresh

    tk = site.trust.find(ref)
    if tk.id == site.signing_key_id():
        with site.action("keys revoke", tk.id):
            raise BadInput(f"key {tk.id[:23]} is the current signing key: generate a new one first")
    impact = revoke_impact(site, tk.id)
    out: dict[str, Any] = {"id": tk.id, "revoked": True}
    if impact["channels"] or impact["releases"]:
        if resign_first:
            out["resigned"] = impact["releases"]
            if impact["releases"]:
                resign(site, impact["releases"])
            out["refreshed"] = [
                {"channel": u.pointer.channel, "version": u.pointer.version}
                for u in (refresh(site, ch, f"re-signed before revoking {tk.id[:23]}") for ch in impact["channels"])
            ]
        elif force:
            out["breaks"] = impact
        else:
            with site.action("keys revoke", tk.id):
                raise BadInput(
                    f"revoking key {tk.id[:23]} would leave {impact_text(impact)} without enough trusted "
                    f"signatures (exit 4 for this console and the nodes): pass --resign to re-sign them with "
                    f"the signing key {site.signing_key_id()[:23]} first, or --force to revoke anyway"
                )
    with site.action("keys revoke", tk.id) as detail:
        tk.revoked = True
        site.save_trust()
        if "breaks" in out:
            detail["breaks"] = impact
    return out


def resign(site: Site, refs: list[str], all_releases: bool = False) -> dict:
    """Add the current signing key's signature to releases; their ids do not change."""
    if not refs and not all_releases:
        raise BadInput("keys resign: name releases or pass --all")
    ids = site.store.list_release_ids() if all_releases else [resolve_release(site, r) for r in refs]
    key = site.signing_key
    done = already = 0
    with site.action("keys resign", "--all" if all_releases else ",".join(refs)) as detail:
        for rid in ids:
            load_release(site, rid)  # only re-sign what verifies today
            data = site.store.read_file(release_path(rid))
            if data is None:
                raise NotFound(f"release {rid} vanished")
            env = parse_envelope(data)
            doc = json.loads(data)
            if any(s["keyid"] == key.id for s in env.signatures):
                already += 1
                continue
            doc["signatures"].append(key.sign(RELEASE_TYPE, env.payload))
            site.store.compare_and_swap(
                release_path(rid), data, json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"
            )
            done += 1
        detail.update(resigned=done, key=key.id)
    return {"resigned": done, "already": already, "key": key.id}
