"""Node side of a depot read in place: a CernVM-FS repository (or any read-only copy of its layout).

Where a site delivers through CernVM-FS (DESIGN §10), the console publishes expanded images into the
repository and nodes use them where they are, read-only, with nothing hydrated. The directory a
node is given (``--mount DIR``: ``/cvmfs/<repo>/<prefix>``) holds::

    releases/<hex>/release.json         the release's signed DSSE envelope, as stored
    releases/<hex>/<arch>/...           each image as a plain tree (what ``console export`` writes)
    releases/<hex>/depot.env            what ``depot-init.sh`` needs (images, env templates)
    releases/<hex>/.cvmfscatalog        one nested catalogue per release
    channels/<name> -> ../releases/<hex>   relative symlink
    channels/<name>.json                the channel's signed pointer envelope, as stored

This module reads that layout: `verify_mount` checks the pointer and the release envelope against
the node's trust set and high-water marks (the rules of a hydrate: replay, same version with other
bytes, expiry, channel mismatch), `mount_image` picks the image for this CPU (``core.arch``), and
`mount_env` gives the same exports as ``depot-init.sh``. Nothing is ever written under the mount;
marks live in the node root, and Julia's writable layer under ``$DEPOT_WRITABLE`` or ``$TMPDIR``.

`env_template` is what the publisher writes into ``depot.env``: the kinds' variables
(``Kind.node_env``) with the image and writable paths as ``@IMAGE@`` / ``@WRITABLE@``, so the shell
script and this module compute one answer from one source.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import BadInput, CheckFailed, CorruptObject, NotFound
from core.kinds import image_kinds
from core.model.digest import digest_bytes, hash_file, hex_of, short
from core.model.manifest import (
    DEFAULT_MAX_MANIFEST_BYTES,
    MODE_DIR,
    MODE_EXEC,
    MODE_FILE,
    MODE_LINK,
    Entry,
    Release,
    parse_payload,
    tree_bytes,
)
from core.store.base import check_channel_name
from core.trust.signing import parse_envelope

if TYPE_CHECKING:
    from core.node.root import NodeRoot
    from core.trust.pointers import Pointer
    from core.trust.signing import TrustSet

RELEASES = "releases"
CHANNELS = "channels"
RELEASE_FILE = "release.json"
ENV_FILE = "depot.env"
CATALOG_MARKER = ".cvmfscatalog"
IMAGE_TOKEN = "@IMAGE@"
WRITABLE_TOKEN = "@WRITABLE@"
#: A ``depot.env`` line naming a directory to create (Julia's writable layer) rather than a variable.
MKDIR = "@MKDIR"
#: Files of a release directory that are not images.
RELEASE_EXTRAS = frozenset({RELEASE_FILE, ENV_FILE, CATALOG_MARKER})

ARCH_ENV = "DEPOT_ARCH"
WRITABLE_ENV = "DEPOT_WRITABLE"


# -- paths ----------------------------------------------------------------------------------------
def release_dir(mount: Path, release_id: str) -> Path:
    return Path(mount) / RELEASES / hex_of(release_id)


def channel_link(mount: Path, channel: str) -> Path:
    return Path(mount) / CHANNELS / check_channel_name(channel)


def pointer_file(mount: Path, channel: str) -> Path:
    return Path(mount) / CHANNELS / f"{check_channel_name(channel)}.json"


def link_release(mount: Path, channel: str) -> str | None:
    """The release id ``channels/<channel>`` links to (None: no link); BadInput for a foreign link."""
    link = channel_link(mount, channel)
    try:
        target = os.readlink(link)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BadInput(f"{link}: not a channel link ({exc.strerror})") from None
    parts = target.split("/")
    if len(parts) != 3 or parts[:2] != ["..", RELEASES] or len(parts[2]) != 64:
        raise BadInput(f"{link} points outside the depot's releases ({target})")
    return "sha256:" + parts[2]


def writable_base() -> Path:
    """The per-user writable layer: ``$DEPOT_WRITABLE``, else ``$TMPDIR/depot-<uid>`` (``/tmp``)."""
    explicit = os.environ.get(WRITABLE_ENV)
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("TMPDIR") or "/tmp") / f"depot-{os.getuid()}"


# -- reading and verifying ------------------------------------------------------------------------
def read_release(mount: Path, release_id: str, max_bytes: int = DEFAULT_MAX_MANIFEST_BYTES) -> tuple[bytes, Release]:
    """The envelope bytes and manifest at ``releases/<hex>/release.json`` (payload hash checked,
    signatures not: `verify_mount` checks those)."""
    path = release_dir(mount, release_id) / RELEASE_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"release {short(release_id)} is not in {mount} ({path} missing)") from None
    env = parse_envelope(data, str(path))
    if digest_bytes(env.payload) != release_id:
        raise CorruptObject(f"{path}: payload does not hash to {short(release_id)} (edited?)")
    return data, parse_payload(env.payload, release_id, [], max_bytes)


@dataclass
class MountRelease:
    """The release a channel of a mounted depot points at, verified (or only read, ``pointer`` None)."""

    mount: Path
    channel: str
    release: Release
    pointer: Pointer | None

    @property
    def dir(self) -> Path:
        return release_dir(self.mount, self.release.id)

    def images(self) -> list[str]:
        return sorted(self.release.images)


def channel_release(mount: Path, channel: str) -> MountRelease:
    """The release ``channels/<channel>`` links to, payload hash checked (no trust set needed:
    ``node env``/``smoke`` read a mount as ``depot-init.sh`` does; ``node verify`` checks trust)."""
    mount = Path(mount)
    rid = link_release(mount, channel)
    if rid is None:
        raise NotFound(f"channel {channel} is not published in {mount} (no {channel_link(mount, channel)})")
    _, rel = read_release(mount, rid)
    return MountRelease(mount, channel, rel, None)


def verify_mount(
    mount: Path,
    channel: str,
    trust: TrustSet,
    node: NodeRoot,
    now: datetime,
    *,
    deep: bool = False,
    max_manifest_bytes: int = DEFAULT_MAX_MANIFEST_BYTES,
) -> tuple[MountRelease, list[dict]]:
    """Verify a channel of a mounted depot as a hydrate would, then raise the node's mark.

    The pointer ``channels/<channel>.json`` against ``trust`` and the node's high-water mark
    (``TrustError``, exit 4: replay, same version with other bytes, expired, wrong channel, bad
    signatures); the link must name the pointer's release (``CheckFailed``); the release envelope's
    signatures and payload hash. ``deep`` re-hashes every image tree against its Merkle root; the
    returned list has one row per image (``arch``, ``ok``, ``problem``). The mark is raised only
    when everything passed, and only in the node root: nothing is written under the mount.
    """
    from core.trust.pointers import MissingPointer, verify_pointer
    from core.trust.releases import release_from_envelope

    mount = Path(mount)
    path = pointer_file(mount, channel)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        mark_v, _ = node.mark(channel)
        if mark_v is not None:
            raise MissingPointer(
                f"{channel} pointer is gone from {mount}, but version {mark_v} was accepted before"
            ) from None
        raise NotFound(f"channel {channel} has no pointer in {mount} ({path} missing)") from None
    mark_v, mark_d = node.mark(channel)
    ptr = verify_pointer(data, channel, trust, mark_v, mark_d, now)
    linked = link_release(mount, channel)
    if linked != ptr.release:
        raise CheckFailed(
            f"{channel_link(mount, channel)} names {short(linked) if linked else 'nothing'} but the signed "
            f"pointer version {ptr.version} names {short(ptr.release)}: the repository is half updated; "
            "run 'console cvmfs sync' on the console host"
        )
    envelope_path = release_dir(mount, ptr.release) / RELEASE_FILE
    try:
        envelope = envelope_path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"release {short(ptr.release)} is not in {mount} ({envelope_path} missing)") from None
    rel = release_from_envelope(envelope, trust, ptr.release, max_manifest_bytes)
    rows = []
    for arch in sorted(rel.images):
        image = release_dir(mount, rel.id) / arch
        if not image.is_dir():
            rows.append({"arch": arch, "ok": False, "problem": f"{image} missing"})
        elif deep:
            root = tree_digest(image)
            ok = root == rel.images[arch].root
            problem = "" if ok else f"tree hashes to {short(root)}, the release says {short(rel.images[arch].root)}"
            rows.append({"arch": arch, "ok": ok, "problem": problem})
        else:
            rows.append({"arch": arch, "ok": True, "problem": ""})
    if all(r["ok"] for r in rows):
        raise_mark(node, ptr, now)
    return MountRelease(mount, channel, rel, ptr), rows


def raise_mark(node: NodeRoot, ptr: Pointer, now: datetime) -> None:
    """Accept ``ptr`` as the channel's high-water mark in the node root (never lowered)."""
    from core.clock import format_time

    with node.lock():
        state = node.load_state()
        mark = state["marks"].get(ptr.channel)
        if mark is None or ptr.version > mark["version"]:
            state["marks"][ptr.channel] = {
                "version": ptr.version,
                "digest": ptr.digest,
                "release": ptr.release,
                "updated": format_time(now),
            }
            node.save_state(state)


def tree_digest(path: Path) -> str:
    """The Merkle root of a directory as a publish computes it (DESIGN §3), for ``verify --deep``.

    Anything a tree cannot hold (a socket, a device) raises CheckFailed naming it.
    """
    digest, _ = _tree(Path(path), "")
    return digest


def _tree(path: Path, rel: str) -> tuple[str, int]:
    entries: list[Entry] = []
    total = 0
    with os.scandir(path) as it:
        items = sorted(it, key=lambda e: e.name)
    for e in items:
        st = e.stat(follow_symlinks=False)
        where = f"{rel}/{e.name}" if rel else e.name
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(e.path)
            entries.append(Entry(e.name, "link", MODE_LINK, len(target.encode()), target=target))
        elif stat.S_ISDIR(st.st_mode):
            d, size = _tree(Path(e.path), where)
            entries.append(Entry(e.name, "dir", MODE_DIR, size, d))
            total += size
        elif stat.S_ISREG(st.st_mode):
            h, size = hash_file(e.path)
            entries.append(Entry(e.name, "file", MODE_EXEC if st.st_mode & 0o100 else MODE_FILE, size, h))
            total += size
        else:
            raise CheckFailed(f"{path / e.name}: not a file, directory or symlink")
    return digest_bytes(tree_bytes(entries)), total


# -- image choice and env -------------------------------------------------------------------------
@dataclass
class MountImage:
    """The image of a mounted release chosen for this CPU, and why."""

    release: MountRelease
    arch: str
    cpu: str
    reason: str

    @property
    def path(self) -> Path:
        return self.release.dir / self.arch


def this_cpu() -> str:
    """This node's CPU as ``depot-init.sh`` sees it: ``$DEPOT_ARCH`` (an archspec name), else
    ``core.arch.host_microarch`` (``$DEPOT_PROBE_CPUINFO`` or this machine)."""
    from core.arch import check_microarch, host_microarch

    override = os.environ.get(ARCH_ENV)
    if override:
        try:
            return check_microarch(override)
        except BadInput as exc:
            raise BadInput(f"${ARCH_ENV}: {exc}") from None
    return host_microarch()


def mount_image(mount: Path, channel: str, cpu: str | None = None) -> MountImage:
    """The most specific image of the channel's release that ``cpu`` (default `this_cpu`) can run;
    CheckFailed (exit 1) with the reasons when none fits."""
    from core.arch import choose_image

    mrel = channel_release(mount, channel)
    cpu = cpu or this_cpu()
    choice = choose_image(cpu, mrel.images())
    if choice.image is None:
        raise CheckFailed(f"no image of {channel} ({short(mrel.release.id)}) fits this CPU: {choice.reason}")
    return MountImage(mrel, choice.image, cpu, choice.reason)


def mount_env(img: MountImage, writable: Path | None = None) -> dict[str, str]:
    """The exports for ``img``, as ``console node env`` prints them and ``depot-init.sh`` sets them."""
    base = writable or writable_base()
    rel = img.release.release
    env = {
        "DEPOT_CHANNEL": img.release.channel,
        "DEPOT_RELEASE": rel.id,
        "DEPOT_IMAGE": img.arch,
        "DEPOT_IMAGE_DIR": str(img.path),
    }
    image = rel.images[img.arch]
    for kind in image_kinds(img.path, str(rel.builder.get("kind", ""))):
        env.update(kind.node_env(img.path, arch=img.arch, cpu_target=image.cpu_target or "", writable=base / kind.name))
    return env


def env_template(release: Release, arch: str, image: Path) -> list[tuple[str, str]]:
    """``(name, value)`` rows of ``depot.env`` for image ``arch`` materialized at ``image``.

    The kinds' variables with ``image`` replaced by ``@IMAGE@`` and the writable layer by
    ``@WRITABLE@``; a kind that creates its writable directory gets a ``@MKDIR`` row first.
    """
    rows: list[tuple[str, str]] = []
    img = release.images[arch]
    with tempfile.TemporaryDirectory(prefix="depot-env-") as scratch:
        base = Path(scratch) / "w"
        for kind in image_kinds(image, str(release.builder.get("kind", ""))):
            writable = base / kind.name
            values = kind.node_env(image, arch=arch, cpu_target=img.cpu_target or "", writable=writable)
            if writable.exists():
                rows.append((MKDIR, f"{WRITABLE_TOKEN}/{kind.name}"))
            for name, value in values.items():
                value = value.replace(str(writable), f"{WRITABLE_TOKEN}/{kind.name}").replace(str(image), IMAGE_TOKEN)
                if "\n" in value or "\t" in value or str(base) in value:
                    raise BadInput(f"{kind.name} variable {name} of image {arch} cannot be templated: {value!r}")
                rows.append((name, value))
    return rows


def env_file(release: Release, images: dict[str, Path]) -> bytes:
    """The bytes of ``depot.env`` for a release whose images are materialized at ``images``."""
    lines = [
        f"# depot.env of release {release.id}: what depot-init.sh reads (written by depot-console;",
        "# release.json beside it is the signed truth). Tab-separated: images, then image / name / value.",
        "images\t" + " ".join(sorted(images)),
    ]
    for arch in sorted(images):
        for name, value in env_template(release, arch, images[arch]):
            lines.append(f"{arch}\t{name}\t{value}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def smoke_image(img: MountImage):  # noqa: ANN201 - core.node.env.NodeImage, imported lazily
    """The ``NodeImage`` ``core.node.smoke`` runs, for an image read in place."""
    from core.node.env import NodeImage

    return NodeImage(img.release.channel, img.release.release, img.arch, img.path)
