"""Publish a release into a CVMFS target as expanded trees (``console cvmfs publish``).

Inside one transaction (or as one ingested tar), ``releases/<hex>/`` gets every image as a plain
tree written by ``core.store.materialize`` (what ``console export`` writes: bytes, exec bits,
relative symlinks that stay inside the image, empty directories; no hard links, which CVMFS does
not support), ``depot.env`` (``core.node.mount.env_file``), an empty ``.cvmfscatalog`` (each
release its own nested catalogue) and, last, ``release.json``, the envelope exactly as stored.
The directory is built under a temporary name and renamed, so even outside CVMFS's atomic
publish a release directory is either complete or absent. ``depot-init.sh`` at the repository
root is rewritten when its text changed.

A release whose ``release.json`` is already in the target with the same bytes is not written
again (no transaction is opened).
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import IO, Any

from core.durable import atomic_write
from core.errors import NotFound
from core.model.digest import hex_of, short
from core.model.manifest import MODE_DIR, MODE_EXEC, MODE_FILE, Release
from core.node.mount import CATALOG_MARKER, ENV_FILE, RELEASE_FILE, env_file
from core.site.catalogue import load_release, resolve_release
from core.site.cvmfs.initscript import render_init_script
from core.site.cvmfs.layout import INIT_SCRIPT, Target
from core.site.cvmfs.runner import Runner, locked, state_dir
from core.site.site import Site
from core.store.base import Store, release_path
from core.store.materialize import Place, build, plan_image
from core.store.trees import TreeReader


def release_envelope(site: Site, release_id: str) -> bytes:
    data = site.store.read_file(release_path(release_id))
    if data is None:
        raise NotFound(f"release {short(release_id)} is not in the store {site.store.location}")
    return data


def is_present(target: Target, release_id: str, envelope: bytes) -> bool:
    """The release is in the target: its ``release.json`` holds these bytes (written last)."""
    try:
        return (target.release_dir(release_id) / RELEASE_FILE).read_bytes() == envelope
    except (FileNotFoundError, NotADirectoryError):
        return False


def _copying_place(store: Store) -> Place:
    """``place`` for ``core.store.materialize.build``: the first file of each digest is fetched
    (decompressed and verified) from the store, later ones (the same file in the release's other
    images) are kernel-side copies of it, never hard links (CVMFS has none across directories)."""
    written: dict[str, str] = {}

    def place(path: str, h: str, executable: bool, size: int) -> None:
        first = written.get(h)
        if first is None:
            store.fetch_object_to("sha256:" + h, path, size)
            written[h] = path
        else:
            shutil.copyfile(first, path)
        os.chmod(path, MODE_EXEC if executable else MODE_FILE)

    return place


def build_release_dir(site: Site, rel: Release, envelope: bytes, dest: Path) -> dict[str, int]:
    """Write release ``rel`` as the directory ``dest`` (built beside it, renamed into place)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        files = nbytes = 0
        images = {}
        place = _copying_place(site.store)
        reader = TreeReader(site.store)
        for arch in sorted(rel.images):
            image = tmp / arch
            image.mkdir()
            f, b = build(str(image), plan_image(reader.walk(rel.images[arch].root)), place, dir_mode=MODE_DIR)
            files, nbytes = files + f, nbytes + b
            images[arch] = image
        (tmp / ENV_FILE).write_bytes(env_file(rel, images))
        (tmp / CATALOG_MARKER).write_bytes(b"")
        (tmp / RELEASE_FILE).write_bytes(envelope)
        for name in (ENV_FILE, CATALOG_MARKER, RELEASE_FILE):
            os.chmod(tmp / name, 0o644)
        os.chmod(tmp, 0o755)
        if dest.exists() or dest.is_symlink():  # a release directory without (or with other) release.json
            shutil.rmtree(dest)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"files": files, "bytes": nbytes}


def write_init_script(target: Target) -> bool:
    """(Re)write ``<mount>/depot-init.sh`` if its text changed; True if written."""
    text = render_init_script(target.node_depot, str(target.node_mount / INIT_SCRIPT)).encode("utf-8")
    path = target.mount / INIT_SCRIPT
    try:
        if path.read_bytes() == text:
            return False
    except FileNotFoundError:
        pass
    atomic_write(path, text, 0o755, durable=False)
    return True


def init_script_current(target: Target) -> bool:
    try:
        return (target.mount / INIT_SCRIPT).read_bytes() == render_init_script(
            target.node_depot, str(target.node_mount / INIT_SCRIPT)
        ).encode("utf-8")
    except FileNotFoundError:
        return False


def _tar_feed(src: Path) -> Any:
    def feed(stream: IO[bytes]) -> None:
        with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for entry in sorted(os.listdir(src)):
                tar.add(src / entry, arcname=entry, recursive=True)

    return feed


def publish_locked(site: Site, target: Target, rel: Release, envelope: bytes, runner: Runner) -> dict[str, Any]:
    """Publish ``rel`` into ``target`` (lock held by the caller); the result row."""
    row: dict[str, Any] = {"target": target.name, "repo": target.repo, "release": rel.id}
    runner.recover()
    if is_present(target, rel.id, envelope):
        row["state"] = "present"
        if not init_script_current(target):
            with runner.transaction("init script"):
                write_init_script(target)
        return row
    if target.mode == "ingest":
        scratch = Path(tempfile.mkdtemp(prefix="ingest-", dir=state_dir(site)))
        try:
            facts = build_release_dir(site, rel, envelope, scratch / hex_of(rel.id))
            runner.ingest(target.base_dir(rel.id), _tar_feed(scratch / hex_of(rel.id)))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if not init_script_current(target):
            with runner.transaction("init script"):
                write_init_script(target)
    else:
        with runner.transaction(f"publish {hex_of(rel.id)}"):
            facts = build_release_dir(site, rel, envelope, target.release_dir(rel.id))
            write_init_script(target)
    row.update(state="published", **facts)
    return row


def publish_release(site: Site, ref: str, target: Target) -> dict[str, Any]:
    """``console cvmfs publish ID --repo R`` for one target: lock, publish (or find it present), audit."""
    with site.action("cvmfs publish", target.name) as detail:
        release_id = resolve_release(site, ref)
        rel = load_release(site, release_id)
        envelope = release_envelope(site, release_id)
        detail["release"] = release_id
        runner = Runner(site, target)
        with locked(site, target):
            row = publish_locked(site, target, rel, envelope, runner)
        row["commands"] = runner.ran
        detail["state"] = row["state"]
        detail["commands"] = runner.ran
    return row
