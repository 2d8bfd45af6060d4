"""The node root (DESIGN §5): its layout, its configuration and its own state file.

A node needs no console database. Everything it knows lives under one directory::

    <root>/cache/objects/<2>/<62>[.x]   uncompressed, verified file objects, read-only (0444, or
                                       0555 with the ``.x`` suffix: hard links share the mode, so an
                                       object needed with the exec bit is a separate cache file)
    <root>/cache/trees/images/<hex>     the tree objects of one image (<hex>: its root), in one file
                                       (so an incremental hydrate re-reads unchanged directories
                                       locally instead of over the network; re-hashed when used)
    <root>/cache/trees/<2>/<62>         tree objects fetched one by one (no pack), same purpose
    <root>/cache/tmp/                   downloads in flight (removed by the next hydrate)
    <root>/releases/<hex>/release.json  the verified release envelope, as fetched
    <root>/releases/<hex>/<arch>/…      a materialized image: hard links into the cache
    <root>/current/<channel>            symlink -> ../releases/<hex>/<arch>, switched by rename
    <root>/writable/                    the per-node writable depot layer
    <root>/state.json                   high-water marks per channel, switch history
    <root>/node.toml                    optional per-root settings (keep, arch, store, trust)
    <root>/.lock                        held (flock) by hydrate and prune

The directories above are created 0755 whatever the umask: readable by the node's jobs, writable
only by the user that hydrates.

Configuration is read from ``$DEPOT_NODE_CONFIG`` (else ``$XDG_CONFIG_HOME/depot-node/node.toml``)
and then ``<root>/node.toml`` (whose keys win); its keys are the fields of ``NodeConfig``, at the
top level or in a ``[node]`` table, validated like console.toml (unknown keys refused). The root
itself comes from ``--root``, else that config's ``root``, else ``$DEPOT_NODE_ROOT``, else
``~/.local/share/depot-node``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import stat
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.durable import atomic_write, ensure_dir, fsync_dir
from core.errors import BadInput
from core.model.digest import hex_of
from core.settings import markdown_rows, parse, setting
from core.store import DEFAULT_DEADLINE_S, DEFAULT_RETRIES, DEFAULT_TIMEOUT_S
from core.xdg import CONFIG_HOME, DATA_HOME, default_path

NODE_DIR_MODE = 0o755  # the node root and its directories: readable by jobs, writable only by the depot owner
ROOT_ENV = "DEPOT_NODE_ROOT"
CONFIG_ENV = "DEPOT_NODE_CONFIG"
STATE_SCHEMA = "depot-node-state/1"
EXEC_SUFFIX = ".x"
DEFAULT_KEEP = 3
HISTORY_LIMIT = 1000


def user_config_path() -> Path:
    """``$DEPOT_NODE_CONFIG``, else ``$XDG_CONFIG_HOME/depot-node/node.toml``."""
    return default_path(CONFIG_ENV, CONFIG_HOME, "depot-node", "node.toml")


def _read_config(path: Path) -> dict[str, Any]:
    """The keys one node config file sets, validated against ``NodeConfig`` ({} if there is none).

    The keys sit in a ``[node]`` table or at the top level; anything else is refused with one
    line naming the file and the key.
    """
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: unreadable node config ({exc})") from None
    table, where = raw, f"{path}: "
    if isinstance(raw.get("node"), dict):
        table, where = raw["node"], f"{path}: [node] "
        for key in raw:
            if key != "node":
                raise BadInput(f"{path}: unknown key {key!r} outside [node] (a node config has only [node])")
    parse(NodeConfig, table, where)
    return dict(table)


def default_workers() -> int:
    """Parallel downloads when neither ``--workers`` nor the node config says: the CPUs this
    process may use, from 2 to 8.

    On a fast link a download is mostly CPU work (decompress, hash, create files), and threads
    beyond the cores only take turns on the GIL: on 2 cores, a full hydrate of 501 MB measured
    1.53 s (median) with 2 workers, 1.58 s with 3 and 1.64 s with 4; 8 took 1.2-1.6x longer
    than 2 for the large objects. A slow, distant store is the case for more: ``workers`` in
    the node config or ``--workers``.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 2
    return max(2, min(8, cpus))


@dataclass(frozen=True)
class NodeConfig:
    """A node's settings: the keys of its config files (README, "Node configuration").

    ``load`` returns the effective ones (user config, then the root's node.toml; command-line
    flags win over both, in the verbs): ``root`` resolved, empty ``arch``/``store``/``trust``
    as None, ``workers`` 0 as ``default_workers()``.
    """

    root: str = setting(
        "",
        "the node root (`--root` wins); read from the user config only, and before `$DEPOT_NODE_ROOT`",
        shown="`$DEPOT_NODE_ROOT`, else `~/.local/share/depot-node`",
    )
    keep: int = setting(DEFAULT_KEEP, "images kept per channel, current included (as `--keep`)", ge=1, le=10000)
    arch: str | None = setting(None, "image to pick instead of the best fit for this CPU (as `--arch`)")
    store: str | None = setting(None, "store path or `http(s)://` URL(s), comma-separated mirrors (as `--store`)")
    trust: str | None = setting(None, "trust file from `console keys export` (as `--trust`)")
    proxies: list[str] = setting(
        [], "proxy URLs tried in order; empty: `HTTP(S)_PROXY`/`NO_PROXY` from the environment"
    )
    workers: int = setting(
        0, "parallel downloads (as `--workers`); 0: the CPU count, 2 to 8", ge=0, le=256, shown="`0` (CPUs, 2 to 8)"
    )
    timeout_s: float = setting(
        DEFAULT_TIMEOUT_S, "per-request HTTP timeout in seconds, as `[http] timeout_s`", gt=0, le=86400
    )
    retries: int = setting(DEFAULT_RETRIES, "HTTP retries, as `[http] retries`", ge=0, le=100)
    deadline_s: float = setting(
        DEFAULT_DEADLINE_S, "overall deadline of one HTTP operation, as `[http] deadline_s`", gt=0, le=86400
    )
    mutable_max_age_s: int = setting(
        60,
        "most seconds a cache between node and store may serve a channel pointer or `index.json` "
        "without revalidating it (the promote/rollback bound; 0: always revalidate)",
        ge=0,
        le=86400,
    )

    @classmethod
    def load(cls, root: str | Path | None = None) -> NodeConfig:
        user = _read_config(user_config_path())
        chosen = Path(root) if root else Path(user["root"]) if user.get("root") else default_root()
        merged = cls(**{**user, **_read_config(chosen / "node.toml")})
        return dataclasses.replace(
            merged,
            root=str(chosen.expanduser()),
            arch=merged.arch or None,
            store=merged.store or None,
            trust=merged.trust or None,
            workers=merged.workers or default_workers(),
        )


def node_config_table() -> str:
    """The README's node.toml table, generated from ``NodeConfig``."""
    return "\n".join(["| key | default | meaning |", "| --- | --- | --- |", *markdown_rows(NodeConfig)])


def default_root() -> Path:
    """``$DEPOT_NODE_ROOT``, else ``$XDG_DATA_HOME/depot-node`` (``~/.local/share/depot-node``)."""
    return default_path(ROOT_ENV, DATA_HOME, "depot-node")


def force_rmtree(path: Path) -> None:
    """Remove a tree even if it holds read-only directories (materialized images are 0555)."""

    def onerror(func, p, exc_info):  # noqa: ANN001 - shutil's callback signature
        parent = os.path.dirname(p)
        with contextlib.suppress(OSError):
            os.chmod(parent, 0o755)
        with contextlib.suppress(OSError):
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, 0o755)
        func(p)

    if os.path.lexists(path):
        if not os.path.isdir(path) or os.path.islink(path):
            os.unlink(path)
        else:
            shutil.rmtree(path, onerror=onerror)


def cache_name(digest: str, executable: bool = False) -> str:
    """``<2 hex>/<62 hex>[.x]``: where an object (or tree) sits below ``cache/objects`` (``cache/trees``)."""
    h = hex_of(digest)
    return f"{h[:2]}/{h[2:]}{EXEC_SUFFIX if executable else ''}"


@dataclass(frozen=True)
class CurrentImage:
    """What ``current/<channel>`` points at."""

    channel: str
    release: str
    arch: str
    path: Path


class NodeRoot:
    """Paths and state of one node root; ``ensure()`` creates the layout."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().absolute()
        self.cache = self.root / "cache"
        self.objects = self.cache / "objects"
        self.trees = self.cache / "trees"
        self.tmp = self.cache / "tmp"
        self.releases = self.root / "releases"
        self.current_dir = self.root / "current"
        self.writable = self.root / "writable"
        self.state_path = self.root / "state.json"

    def ensure(self) -> NodeRoot:
        for d in (
            self.root,
            self.cache,
            self.objects,
            self.trees,
            self.tmp,
            self.releases,
            self.current_dir,
            self.writable,
        ):
            ensure_dir(d, NODE_DIR_MODE)
        return self

    # -- cache names -----------------------------------------------------------------------
    def object_path(self, digest: str, executable: bool = False) -> Path:
        return Path(f"{self.objects}/{cache_name(digest, executable)}")  # one Path, not three

    def tree_path(self, digest: str) -> Path:
        return Path(f"{self.trees}/{cache_name(digest)}")

    def release_dir(self, release_id: str) -> Path:
        return self.releases / hex_of(release_id)

    def image_dir(self, release_id: str, arch: str) -> Path:
        return self.release_dir(release_id) / arch

    # -- lock ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive lock on the root: one hydrate or prune at a time (waits for the holder).

        While it is held the process umask is at least 022 (restored after), so nothing hydrate or
        prune creates under the root is writable by group or others, whatever the caller's umask.
        """
        ensure_dir(self.root, NODE_DIR_MODE)
        with open(os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644), "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            previous = os.umask(0o022)
            os.umask(previous | 0o022)
            try:
                yield
            finally:
                os.umask(previous)
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- state.json ------------------------------------------------------------------------
    def load_state(self) -> dict[str, Any]:
        """``{"schema", "marks": {channel: {version, digest, release, updated}}, "history": [...]}``."""
        from core.node.hydrate.record import parse_state  # validated like any input (issue 12 item 8)

        try:
            data = self.state_path.read_bytes()
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            raise BadInput(f"{self.state_path}: unreadable node state ({exc.strerror})") from None
        return parse_state(data, self.state_path)

    def save_state(self, doc: dict[str, Any]) -> None:
        doc["history"] = doc.get("history", [])[-HISTORY_LIMIT:]
        ensure_dir(self.root, NODE_DIR_MODE)
        atomic_write(self.state_path, json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n")

    def mark(self, channel: str) -> tuple[int | None, str | None]:
        m = self.load_state()["marks"].get(channel)
        return (m["version"], m["digest"]) if m else (None, None)

    # -- current links ---------------------------------------------------------------------
    def current(self, channel: str) -> CurrentImage | None:
        """The image ``current/<channel>`` points at, or None if there is no such link."""
        link = self.current_dir / channel
        if not link.is_symlink():
            return None
        target = os.readlink(link)
        parts = Path(os.path.normpath(os.path.join("current", target))).parts
        if len(parts) != 3 or parts[0] != "releases" or len(parts[1]) != 64:
            raise BadInput(f"{link} points outside the node's releases ({target})")
        return CurrentImage(channel, "sha256:" + parts[1], parts[2], self.releases / parts[1] / parts[2])

    def channels(self) -> list[str]:
        try:
            return sorted(
                n for n in os.listdir(self.current_dir) if not n.startswith(".") and (self.current_dir / n).is_symlink()
            )
        except FileNotFoundError:
            return []

    def switch(self, channel: str, release_id: str, arch: str) -> None:
        """Point ``current/<channel>`` at the image atomically: temp symlink, then rename over."""
        ensure_dir(self.current_dir, NODE_DIR_MODE)
        target = f"../releases/{hex_of(release_id)}/{arch}"
        tmp = self.current_dir / f".{channel}.tmp-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(target, tmp)
        os.replace(tmp, self.current_dir / channel)
        fsync_dir(self.current_dir)

    # -- sizes -----------------------------------------------------------------------------
    def cache_usage(self) -> dict[str, int]:
        """Objects and bytes in the cache (a hard-linked file counts once)."""
        objects = nbytes = trees = 0
        for base, is_tree in ((self.objects, False), (self.trees, True)):
            try:
                subs = os.listdir(base)
            except FileNotFoundError:
                continue
            for sub in subs:
                if is_tree and sub == "images":  # image bundles: bytes, not single trees
                    with contextlib.suppress(FileNotFoundError):
                        nbytes += sum(e.stat().st_size for e in os.scandir(base / sub))
                    continue
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    for e in os.scandir(base / sub):
                        st = e.stat(follow_symlinks=False)
                        if stat.S_ISREG(st.st_mode):
                            nbytes += st.st_size
                            if is_tree:
                                trees += 1
                            else:
                                objects += 1
        return {"objects": objects, "trees": trees, "bytes": nbytes}
