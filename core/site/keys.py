"""Key management for a site: list, generate (rotation), trust, revoke, re-sign releases.

Rotation is: ``generate`` a new key (trusted and used for signing from now on), ``resign`` the
releases so they carry its signature too, then ``revoke`` the old key. A revoked key stays in the
trust set, marked, so its signatures are rejected rather than merely unknown.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.durable import atomic_write
from core.errors import BadInput, NotFound
from core.site.catalogue import load_release, resolve_release
from core.site.site import Site
from core.store.base import release_path
from core.trust.signing import RELEASE_TYPE, ROLES, generate_key, key_id, load_public_key, parse_envelope, public_pem


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


def revoke(site: Site, ref: str) -> dict:
    tk = site.trust.find(ref)
    with site.action("keys revoke", tk.id):
        if tk.id == site.signing_key_id():
            raise BadInput(f"key {tk.id[:23]} is the current signing key: generate a new one first")
        tk.revoked = True
        site.save_trust()
    return {"id": tk.id, "revoked": True}


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
