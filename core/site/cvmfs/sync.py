"""Channels in CVMFS targets follow the store: flips after ``promote``/``rollback``, and ``cvmfs sync``.

A channel in a target is *in line* when ``channels/<name>.json`` holds exactly the store's current
pointer bytes and ``channels/<name>`` links to that pointer's release. Bringing it in line takes
up to two small transactions: the release (if the target lacks it), then the flip (the link,
replaced by rename, and the pointer envelope beside it). The store pointer is issued first and
stays the truth: a target that fails is reported (exit 1) and recorded as failed
(``<site>/cvmfs/<target>.json``), and ``console cvmfs sync`` brings it back in line later.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from core.clock import format_time
from core.durable import atomic_write
from core.errors import DepotError
from core.model.digest import hex_of
from core.node.mount import RELEASES, link_release, pointer_file
from core.site.catalogue import load_release
from core.site.cvmfs.layout import Target, find_target, targets
from core.site.cvmfs.publish import publish_locked, release_envelope
from core.site.cvmfs.runner import Runner, locked, state_dir
from core.site.site import Site


def outcomes_path(site: Site, target: Target) -> Path:
    return state_dir(site) / f"{target.name}.json"


def load_outcomes(site: Site, target: Target) -> dict[str, Any]:
    """The last sync outcome per channel of ``target``: {channel: {ok, time, message, version}}."""
    try:
        doc = json.loads(outcomes_path(site, target).read_text())
        return doc if isinstance(doc, dict) else {}
    except (FileNotFoundError, ValueError):
        return {}


def _save_outcome(site: Site, target: Target, channel: str, ok: bool, message: str, version: int | None) -> None:
    doc = load_outcomes(site, target)
    doc[channel] = {"ok": ok, "time": format_time(site.now()), "message": message, "version": version}
    atomic_write(outcomes_path(site, target), json.dumps(doc, indent=1, sort_keys=True).encode(), 0o600, durable=False)


def store_pointer(site: Site, channel: str) -> tuple[bytes, Any] | None:
    """The store's current pointer of ``channel`` (bytes, verified Pointer), None if it has none."""
    from core.site.channels import read_current

    cur = read_current(site, channel, None)
    if cur.pointer is None or cur.data is None:
        return None
    return cur.data, cur.pointer


def in_line(target: Target, channel: str, data: bytes, release_id: str) -> bool:
    try:
        current = pointer_file(target.depot, channel).read_bytes()
    except FileNotFoundError:
        return False
    try:
        linked = link_release(target.depot, channel)
    except DepotError:
        return False
    return current == data and linked == release_id


def write_flip(target: Target, channel: str, data: bytes, release_id: str) -> None:
    """Inside a transaction: the pointer envelope, then the link (temp name, renamed over)."""
    target.channels_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(pointer_file(target.depot, channel), data, 0o644, durable=False)
    tmp = target.channels_dir / f".{channel}.tmp-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(f"../{RELEASES}/{hex_of(release_id)}", tmp)
    os.replace(tmp, target.channels_dir / channel)


def sync_channel_locked(site: Site, target: Target, channel: str, runner: Runner) -> dict[str, Any]:
    """Bring one channel of ``target`` in line (lock held); the report row."""
    row: dict[str, Any] = {"target": target.name, "repo": target.repo, "channel": channel}
    found = store_pointer(site, channel)
    if found is None:
        row.update(state="no pointer", ok=True, changed=False)
        return row
    data, ptr = found
    row.update(version=ptr.version, release=ptr.release)
    runner.recover()
    if in_line(target, channel, data, ptr.release):
        row.update(state="in line", ok=True, changed=False)
        return row
    published = publish_locked(
        site, target, load_release(site, ptr.release), release_envelope(site, ptr.release), runner
    )
    row["release_state"] = published["state"]
    with runner.transaction(f"flip {channel} -> {hex_of(ptr.release)}"):
        write_flip(target, channel, data, ptr.release)
    row.update(state="in line", ok=True, changed=True)
    return row


def sync_target(site: Site, target: Target, channels: list[str] | None = None) -> list[dict[str, Any]]:
    """Sync the channels ``target`` follows (or only ``channels``); one row per channel, failures
    reported in their row (``ok`` False, ``error``) and recorded, never raised."""
    names = channels if channels is not None else sorted(site.store.list_channels())
    rows = []
    for channel in names:
        if not target.follows(channel):
            continue
        runner = Runner(site, target)
        try:
            with locked(site, target):
                row = sync_channel_locked(site, target, channel, runner)
        except DepotError as exc:
            row = {"target": target.name, "repo": target.repo, "channel": channel, "state": "failed"}
            row.update(ok=False, changed=False, error=str(exc), exit_code=exc.exit_code)
        row["commands"] = runner.ran
        if row["state"] != "no pointer":
            _save_outcome(site, target, channel, row["ok"], row.get("error", ""), row.get("version"))
        rows.append(row)
    return rows


def after_channel_update(site: Site, channel: str) -> list[dict[str, Any]]:
    """Called by ``promote``/``rollback`` after the store pointer is issued: flip ``channel`` in every
    configured target that follows it; one row per target (``[]`` when none is configured)."""
    rows: list[dict[str, Any]] = []
    for target in targets(site):
        if target.follows(channel):
            with site.action("cvmfs flip", f"{target.name}:{channel}") as detail:
                got = sync_target(site, target, [channel])
                detail.update(rows=[{k: v for k, v in r.items() if k != "commands"} for r in got])
                if any(not r["ok"] for r in got):
                    detail.outcome = "failed"
            rows += got
    return rows


def sync(site: Site, ref: str | None = None, channels: list[str] | None = None) -> list[dict[str, Any]]:
    """``console cvmfs sync [--repo R] [--channel C]``: every (or the named) target back in line."""
    rows: list[dict[str, Any]] = []
    for target in find_target(site, ref):
        with site.action("cvmfs sync", target.name) as detail:
            got = sync_target(site, target, channels)
            detail["changed"] = [r["channel"] for r in got if r.get("changed")]
            if any(not r["ok"] for r in got):
                detail.outcome = "failed"
        rows += got
    return rows
