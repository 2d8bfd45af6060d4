"""Publish: directory trees -> objects + trees + a signed release + the index (DESIGN §2, §3).

Order of work, chosen so that no failure leaves a half-written store:

1. scan and validate every input tree (nothing written yet);
2. hash files, reusing the (path, size, mtime, inode) -> digest cache in the database;
3. run the ``pre_publish`` hook (a failing hook aborts here, nothing written);
4. under the store's shared publish lock (gc takes it exclusively, so it can never delete an
   object this publish decided to reuse): write missing objects, then tree objects, then the
   image packs and the release's pack list (``core.store.packs``), then the release envelope, then
   update ``index.json`` by compare-and-swap;
5. run the ``post_publish`` hook.

A publish killed in step 4 leaves only complete, unreferenced objects (and perhaps ``.tmp-*``
files), which a rerun reuses and ``gc`` removes.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from core.errors import BadInput, CheckFailed, DepotError
from core.model.digest import digest_bytes, hash_file
from core.model.manifest import (
    MODE_DIR,
    MODE_EXEC,
    MODE_FILE,
    MODE_LINK,
    Entry,
    Image,
    build_payload,
    release_id_of,
    tree_bytes,
)
from core.site.scan import ScannedDir, ScannedTree, scan_tree
from core.site.site import Site, format_time
from core.store.base import release_path
from core.store.packs import existing_packs, write_release_packs
from core.trust.signing import RELEASE_TYPE, make_envelope

#: A file whose mtime is this close to "now" is not cached: it could still change within the
#: file system's timestamp granularity without changing size or mtime (git's "racily clean").
RACY_NS = 2_000_000_000

Progress = Callable[[str, int, int, int], None]


@dataclass
class PublishResult:
    """What a publish did, for the operator and for scripts."""

    release_id: str = ""
    name: str = ""
    label: str = ""
    images: dict[str, dict] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0
    new_objects: int = 0
    new_bytes: int = 0
    stored_bytes: int = 0
    reused_objects: int = 0
    reused_bytes: int = 0
    hashed_files: int = 0
    cached_files: int = 0
    reused_packs: int = 0  # images whose packs an earlier release of the same name already had
    seconds: float = 0.0
    already_published: bool = False

    def to_json(self) -> dict:
        return dict(self.__dict__)


def parallel_map(fn: Callable, items: list, workers: int) -> list:
    """``map`` over a thread pool that drops queued work at once on an error or Ctrl-C."""
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        return list(pool.map(fn, items))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _hash_all(site: Site, trees: list[ScannedTree], workers: int, progress: Progress | None) -> tuple[int, int]:
    """Fill ``digest`` on every scanned file; return (hashed, cached) counts."""
    todo = []
    cached = 0
    now_ns = time.time_ns()
    same_file: dict[str, list] = {}  # one directory given for several images: hash once
    for tree in trees:
        prefix = str(tree.root.resolve()) + os.sep
        cache = site.state.cached_digests(prefix)
        for f in tree.files:
            key = prefix + f.relpath
            hit = cache.get(key)
            if hit and hit[0] == f.size and hit[1] == f.mtime_ns and hit[2] == f.inode:
                f.digest = hit[3]
                cached += 1
            elif key in same_file:
                same_file[key].append(f)
            else:
                same_file[key] = []
                todo.append((key, f))
    done = [0, 0]
    lock = threading.Lock()

    def one(item):
        key, f = item
        try:
            digest, size = hash_file(f.abspath)
        except PermissionError:
            raise BadInput(f"{f.abspath}: cannot read file (permission denied)") from None
        except OSError as exc:
            raise BadInput(f"{f.abspath}: cannot read file ({exc.strerror})") from None
        if size != f.size:
            raise BadInput(f"{f.abspath}: file changed while publishing")
        f.digest = digest
        with lock:
            done[0] += 1
            done[1] += size
            if progress:
                progress("hash", done[0], len(todo), done[1])
        return key, f

    rows = []
    for key, f in parallel_map(one, todo, workers):
        for twin in same_file[key]:
            twin.digest = f.digest
        if now_ns - f.mtime_ns > RACY_NS:
            rows.append((key, f.size, f.mtime_ns, f.inode, f.digest))
    site.state.store_digests(rows)
    return len(todo), cached


def _tree_entries(node: ScannedDir, out: dict[str, bytes]) -> tuple[str, int, int]:
    """Build tree objects bottom-up into ``out``; return (digest, bytes below, files below)."""
    entries: list[Entry] = []
    total = 0
    nfiles = 0
    for name, f in node.files.items():
        entries.append(Entry(name, "file", MODE_EXEC if f.executable else MODE_FILE, f.size, f.digest))
        total += f.size
        nfiles += 1
    for name, target in node.links.items():
        entries.append(Entry(name, "link", MODE_LINK, len(target.encode()), target=target))
    for name, sub in node.dirs.items():
        d, size, n = _tree_entries(sub, out)
        entries.append(Entry(name, "dir", MODE_DIR, size, d))
        total += size
        nfiles += n
    data = tree_bytes(entries)
    digest = digest_bytes(data)
    out[digest] = data
    return digest, total, nfiles


def run_hook(site: Site, which: str, env_extra: dict[str, str]) -> None:
    """Run a configured shell hook (``pre_publish``, ``post_publish``, ``abort_publish``)."""
    cmd = str(getattr(site.config.publish, which)).strip()
    if not cmd:
        return
    env = dict(os.environ, **env_extra)
    proc = subprocess.run(cmd, shell=True, cwd=site.root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        raise CheckFailed(f"{which} hook failed (exit {proc.returncode}): {tail[0]}")


#: How many earlier releases of the same name publish looks through for packs it can reuse.
PACK_REUSE_LOOKBACK = 5


def publish(
    site: Site,
    name: str,
    images: dict[str, Path],
    *,
    label: str = "",
    parent: str | None = None,
    builder: dict | None = None,
    source: dict | None = None,
    smoke: dict | None = None,
    cpu_targets: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> PublishResult:
    """Publish one release made of one tree per micro-architecture; return what was done."""
    import core.arch as archmod
    from core.kinds.packages import find_julia_environment, julia_manifest_packages
    from core.model.manifest import check_release_name
    from core.site.catalogue import resolve_release, sync_catalogue, update_index

    t0 = time.perf_counter()
    check_release_name(name)
    signing_key = site.signing_key  # a missing or unreadable key fails here, before any write
    if not images:
        raise BadInput("publish needs at least one --image ARCH=DIR")
    for a in images:
        archmod.check_microarch(a)
    if parent:
        parent = resolve_release(site, parent)
    trees = {a: scan_tree(Path(d)) for a, d in sorted(images.items())}
    workers = site.config.publish.workers or min(4, (os.cpu_count() or 2))
    result = PublishResult(name=name, label=label)
    result.hashed_files, result.cached_files = _hash_all(site, list(trees.values()), workers, progress)

    tree_objects: dict[str, bytes] = {}
    image_meta: dict[str, Image] = {}
    builder = dict(builder or {"kind": "tree", "tool_version": "depot-console"})
    for a, tree in trees.items():
        root, size, nfiles = _tree_entries(tree.top, tree_objects)
        if builder["kind"] == "julia" or (cpu_targets and a in cpu_targets):
            target = (cpu_targets or {}).get(a) or archmod.julia_cpu_target(a)
        else:
            target = archmod.julia_cpu_target(a) if find_julia_environment(tree.root) else ""
        image_meta[a] = Image(a, root, nfiles, size, target)
        result.images[a] = {"root": root, "files": nfiles, "bytes": size, "cpu_target": target}
        result.files += nfiles
        result.bytes += size

    if source is None:
        source = {"files": {}, "packages": []}
        for tree in trees.values():
            manifest = find_julia_environment(tree.root)
            if manifest:
                source["packages"] = julia_manifest_packages(manifest.read_text("utf-8"))
                for fname in ("Project.toml", "Manifest.toml"):
                    p = manifest.parent / fname
                    if p.exists():
                        source["files"][fname] = hash_file(p)[0]
                if builder["kind"] == "tree":
                    builder["environment"] = str(manifest.parent.relative_to(tree.root))
                break
    created = format_time(site.now())
    payload = build_payload(
        name=name,
        label=label,
        created=created,
        parent=parent,
        builder=builder,
        source=source,
        images=image_meta,
        smoke=smoke,
    )
    release_id = release_id_of(payload)
    result.release_id = release_id
    store = site.store
    if store.read_file(release_path(release_id)) is not None:  # same payload (same second): nothing to do
        result.already_published = True

    # Unique file objects with one representative path each.
    by_digest: dict[str, tuple[str, int]] = {}
    for tree in trees.values():
        for f in tree.files:
            by_digest.setdefault(f.digest, (f.abspath, f.size))  # type: ignore[arg-type]

    env = {"DEPOT_STORE": store.location, "DEPOT_RELEASE_NAME": name, "DEPOT_RELEASE": release_id}
    run_hook(site, "pre_publish", env)
    try:
        with store.publish_lock():
            missing = store.missing_objects(by_digest)
            result.reused_objects = len(by_digest) - len(missing)
            result.reused_bytes = sum(s for d, (_, s) in by_digest.items() if d not in missing)
            lock = threading.Lock()
            done = [0, 0]
            todo = sorted(missing, key=lambda d: -by_digest[d][1])

            def put(d: str) -> int:
                path, size = by_digest[d]
                try:
                    stored = store.put_object_file(d, path)
                except PermissionError:
                    raise BadInput(f"{path}: cannot read file (permission denied)") from None
                except zstandard.ZstdError:  # the frame header's size no longer matches the file
                    raise BadInput(f"{path}: file changed while publishing") from None
                with lock:
                    done[0] += 1
                    done[1] += size
                    if progress:
                        progress("write", done[0], len(todo), done[1])
                return stored

            result.stored_bytes = sum(parallel_map(put, todo, workers))
            result.new_objects = len(todo)
            result.new_bytes = sum(by_digest[d][1] for d in todo)
            for d, data in tree_objects.items():
                if not store.has_object(d):
                    result.stored_bytes += store.put_object(d, data)
            if not result.already_published:  # packs (derived, for fast HTTP hydrate), then their list
                roots = {a: m.root for a, m in image_meta.items()}
                earlier = [r["id"] for r in site.state.release_rows(name=name, limit=PACK_REUSE_LOOKBACK)]
                reuse = existing_packs(store, earlier, set(roots.values()))
                result.reused_packs = sum(root in reuse for root in roots.values())
                write_release_packs(store, release_id, roots, tree_objects, workers, reuse=reuse)
            envelope = make_envelope(RELEASE_TYPE, payload, [signing_key])
            store.sync()  # objects, trees and packs are durable before the release that names them
            if not result.already_published:
                store.write_file(release_path(release_id), envelope)
            update_index(site)
            store.sync()
    except (DepotError, KeyboardInterrupt, OSError):
        try:
            run_hook(site, "abort_publish", env)
        except DepotError:
            pass
        raise
    sync_catalogue(site, only=[release_id])
    run_hook(site, "post_publish", env)
    result.seconds = time.perf_counter() - t0
    return result


def parse_image_args(values: list[str]) -> dict[str, Path]:
    """``["x86_64=/path", …]`` -> ``{"x86_64": Path}``; duplicates and bad syntax are refused."""
    out: dict[str, Path] = {}
    for v in values:
        arch, sep, path = v.partition("=")
        if not sep or not arch or not path:
            raise BadInput(f"--image expects ARCH=DIR, got {v!r}")
        if arch in out:
            raise BadInput(f"--image {arch} given twice")
        out[arch] = Path(path)
    return out


def parse_smoke(command: str | None, timeout_s: int = 600) -> dict | None:
    """A ``--smoke 'cmd args'`` option as a manifest smoke section."""
    if not command:
        return None
    return {"command": shlex.split(command), "timeout_s": timeout_s}
