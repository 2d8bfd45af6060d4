"""``console cvmfs gc``: remove releases from a target that no channel or keep rule needs.

Kept: every release a channel link in the target names, the store's current release of every
channel the target follows, and the ``keep`` most recent distinct releases of each such channel's
history (rollback targets stay published, so a rollback only flips a link). Everything else is
removed in one transaction of its own, under the repository's lock, so it never races a publish.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from core.errors import DepotError
from core.node.mount import link_release
from core.site.cvmfs.layout import Target, find_target
from core.site.cvmfs.runner import Runner, locked
from core.site.cvmfs.status import present_releases
from core.site.site import Site


def needed(site: Site, target: Target, keep: int) -> set[str]:
    from core.site.channels import read_current, read_history

    keep_ids: set[str] = set()
    try:
        names = os.listdir(target.channels_dir)
    except FileNotFoundError:
        names = []
    for name in names:
        if not name.endswith(".json") and not name.startswith("."):
            try:
                rid = link_release(target.depot, name)
            except DepotError:
                continue
            if rid:
                keep_ids.add(rid)
    for channel in site.store.list_channels():
        if not target.follows(channel):
            continue
        cur = read_current(site, channel, None)
        if cur.pointer is not None:
            keep_ids.add(cur.pointer.release)
        distinct: list[str] = []
        for entry in reversed(read_history(site, channel)):
            if entry.pointer is not None and entry.pointer.release not in distinct:
                distinct.append(entry.pointer.release)
        keep_ids.update(distinct[:keep])
    return keep_ids


def gc_target(site: Site, target: Target, *, keep: int = 2, dry_run: bool = False) -> dict[str, Any]:
    runner = Runner(site, target)
    with locked(site, target):
        runner.recover()
        keep_ids = needed(site, target, keep)
        present = present_releases(target)
        doomed = [r for r in present if r not in keep_ids]
        strays = []  # leftovers of a build that was interrupted outside a transaction
        try:
            strays = [n for n in os.listdir(target.releases) if n.startswith(".")]
        except FileNotFoundError:
            pass
        if (doomed or strays) and not dry_run:
            with runner.transaction(f"gc {len(doomed)} release(s)"):
                for rid in doomed:
                    shutil.rmtree(target.release_dir(rid))
                for name in strays:
                    shutil.rmtree(target.releases / name, ignore_errors=True)
    return {
        "target": target.name,
        "repo": target.repo,
        "kept": sorted(keep_ids & set(present)),
        "removed": doomed,
        "dry_run": dry_run,
        "commands": runner.ran,
    }


def gc(site: Site, ref: str | None = None, *, keep: int = 2, dry_run: bool = False) -> list[dict[str, Any]]:
    out = []
    for target in find_target(site, ref):
        if dry_run:
            out.append(gc_target(site, target, keep=keep, dry_run=True))
            continue
        with site.action("cvmfs gc", target.name) as detail:
            row = gc_target(site, target, keep=keep)
            detail.update(removed=row["removed"])
        out.append(row)
    return out
