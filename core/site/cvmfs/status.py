"""``console cvmfs status``: per target, releases present, channel states and the revision.

A channel's state in a target: ``in line`` (the store's current pointer bytes and the link to its
release), ``behind`` (an older pointer or none yet), ``failed`` (not in line and the last sync of
it failed: the row says why) or ``ahead?`` (the target holds a pointer version above the store's,
which only a hand edit or another console can cause). The revision is the repository's
``user.revision`` extended attribute, which CVMFS clients expose (None where it is not readable).
"""

from __future__ import annotations

import os
from typing import Any

from core.errors import DepotError
from core.model.digest import digest_bytes
from core.node.mount import RELEASE_FILE, link_release, pointer_file
from core.site.cvmfs.layout import Target, find_target, targets
from core.site.cvmfs.publish import init_script_current
from core.site.cvmfs.runner import state_dir
from core.site.cvmfs.sync import load_outcomes, store_pointer
from core.site.site import Site
from core.trust.pointers import parse_pointer_payload, pointer_envelope


def revision(target: Target) -> int | None:
    try:
        return int(os.getxattr(target.mount, "user.revision"))
    except (OSError, ValueError):
        return None


def present_releases(target: Target) -> list[str]:
    """Release ids whose directory holds a ``release.json`` (complete: it is written last)."""
    try:
        names = sorted(os.listdir(target.releases))
    except FileNotFoundError:
        return []
    return ["sha256:" + n for n in names if len(n) == 64 and (target.releases / n / RELEASE_FILE).is_file()]


def release_in_targets(site: Site, release_id: str) -> list[dict[str, Any]]:
    """Per configured target, whether it holds ``release_id`` (its ``release.json``, written last,
    is there); ``present`` is None where the mount cannot be read. ``[]`` without targets."""
    out = []
    for target in targets(site):
        try:
            present: bool | None = (target.release_dir(release_id) / RELEASE_FILE).is_file()
        except OSError:
            present = None
        out.append({"target": target.name, "repo": target.repo, "present": present})
    return out


def _target_pointer(target: Target, channel: str) -> tuple[bytes | None, int | None]:
    try:
        data = pointer_file(target.depot, channel).read_bytes()
    except FileNotFoundError:
        return None, None
    try:
        ptr = parse_pointer_payload(pointer_envelope(data, channel).payload, digest_bytes(data), channel)
        return data, ptr.version
    except DepotError:
        return data, None


def channel_state(site: Site, target: Target, channel: str, outcomes: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"channel": channel, "store_version": None, "store_release": None}
    found = store_pointer(site, channel)
    data, version = _target_pointer(target, channel)
    try:
        linked = link_release(target.depot, channel)
    except DepotError:
        linked = None
    row.update(target_version=version, target_release=linked)
    last = outcomes.get(channel) or {}
    if found is None:
        row["state"] = "no pointer"
        return row
    store_data, ptr = found
    row.update(store_version=ptr.version, store_release=ptr.release)
    if data == store_data and linked == ptr.release:
        row["state"] = "in line"
    elif not last.get("ok", True):
        row.update(state="failed", error=last.get("message", ""), since=last.get("time"))
    elif version is not None and version > ptr.version:
        row["state"] = "ahead?"
    else:
        row["state"] = "behind"
    return row


def status(site: Site, ref: str | None = None) -> list[dict[str, Any]]:
    """One document per target: its settings, revision, releases present, channels and their state."""
    out = []
    channels = sorted(site.store.list_channels())
    for target in find_target(site, ref):
        outcomes = load_outcomes(site, target)
        doc = target.to_json()
        doc.update(
            revision=revision(target),
            releases=present_releases(target),
            init_script=init_script_current(target),
            open_transaction=(state_dir(site) / f"{target.repo}.txn").exists(),
            channels=[channel_state(site, target, c, outcomes) for c in channels if target.follows(c)],
        )
        out.append(doc)
    return out
