"""``Site``: one object tying config + store + keys + state together, used by the CLI and the TUI.

A site is a directory (mode 0700: only its operator may enter it)::

    console.toml      configuration and trust set (0600)
    state.db          SQLite state (WAL) (0600; SQLite gives its -wal and -shm files the same mode)
    keys/<id>.pem     private signing keys (keys/ 0700, each key 0600)
    store/            the default local store (``[site] store`` may point elsewhere, or at a URL);
                      directories 0755, files 0644 or 0444: readable by all, writable by none but us
    logs/             build logs (0700)

``init`` sets these modes explicitly, whatever the umask.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from core.clock import CLOCK_ENV, format_time, parse_time, system_clock  # noqa: F401 (re-exported)
from core.durable import create_private, ensure_dir
from core.errors import DISK_FULL_ERRNOS, BadInput, DepotError, LocalStateError, NotFound, disk_full
from core.settings import to_table
from core.site import local_record
from core.site.config import CONFIG_NAME, Config
from core.site.state import State
from core.store.base import Store, store_meta
from core.trust.signing import ROLES, SigningKey, TrustSet, generate_key, load_key
from core.xdg import DATA_HOME, default_path

SITE_ENV = "DEPOT_CONSOLE_SITE"
SITE_DIR_MODE = 0o700  # the site directory, keys/ and logs/


def default_site_dir() -> Path:
    """``$DEPOT_CONSOLE_SITE``, else ``$XDG_DATA_HOME/depot-console`` (``~/.local/share/depot-console``)."""
    return default_path(SITE_ENV, DATA_HOME, "depot-console")


def default_actor() -> str:
    """``user@host`` of whoever runs the console."""
    import getpass  # not paid by the read-only verbs, which never name an actor
    import socket

    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


class ActionDetail(dict):
    """The audit detail a ``Site.action`` body fills in, its ``outcome`` (``ok`` unless the
    body says otherwise: a fleet check that reached every node but found failures) and, when the
    body learns it, the ``target`` the row names instead (a publish: the new release id)."""

    outcome: str = "ok"
    target: str = ""


class Site:
    """An opened site. Cheap to construct; the store is opened on first use."""

    def __init__(self, root: Path, *, clock: Callable[[], datetime] = system_clock, read_only: bool = False) -> None:
        self.root = Path(root)
        self.config = Config.load(self.root / CONFIG_NAME)
        self.state = State(self.root / "state.db", busy_timeout_s=self.config.site.busy_timeout_s)
        self.clock = clock
        self.read_only = read_only
        self._store: Store | None = None
        self._trust: TrustSet | None = None
        self._key: SigningKey | None = None
        #: One-line warnings for the operator (the CLI prints them on stderr; ``core.site.local_record``).
        self.warnings: list[str] = [f"warning: {n}" for n in self.state.notes]
        self.deferred: int | None = None  # index in ``warnings`` of the one saying a record was deferred
        if local_record.pending(self):
            local_record.catch_up(self)

    # -- creation ------------------------------------------------------------------------
    @classmethod
    def init(cls, root: Path, store: str | None = None, name: str | None = None, layout: str = "loose") -> Site:
        """Create a site: config, database, store (a new one of ``layout``: ``core.store.base``),
        and a signing key trusted for both roles."""
        from core.store import open_store

        root = Path(root)
        if (root / CONFIG_NAME).exists():
            raise BadInput(f"a site already exists at {root}")
        store_meta(layout)  # an unknown layout fails here, before anything is made
        ensure_dir(root, SITE_DIR_MODE)
        if root.stat().st_uid == os.geteuid():
            os.chmod(root, SITE_DIR_MODE)  # an existing (empty) directory too: the site is private
        ensure_dir(root / "logs", SITE_DIR_MODE)
        create_private(root / "state.db")
        store_loc = store or "store"
        open_store(_resolve_store(root, store_loc), create=True, layout=layout)
        key = generate_key(root / "keys" / "signing.pem")
        trust = TrustSet()
        trust.add(key.public, ROLES, name="initial")
        cfg = Config.new(root / CONFIG_NAME, name=name or root.name, store=store_loc, signing_key="keys/signing.pem")
        cfg.update("trust", trust.to_config())
        cfg.save()
        site = cls(root)
        site.audit("init", str(root), "ok", {"store": store_loc, "key": key.id, "layout": layout})
        return site

    # -- parts ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.config.site.name

    @property
    def store_location(self) -> str:
        return _resolve_store(self.root, self.config.site.store)

    @property
    def store_layout(self) -> str:
        """ "packed" or "loose" (``core.store.base``)."""
        return "packed" if self.store.packed else "loose"

    @property
    def store(self) -> Store:
        if self._store is None:
            from core.store import open_store

            http = self.config.http
            self._store = open_store(
                self.store_location,
                proxies=http.proxies or None,
                timeout_s=http.timeout_s,
                retries=http.retries,
                deadline_s=http.deadline_s,
            )
        return self._store

    @property
    def trust(self) -> TrustSet:
        if self._trust is None:
            self._trust = TrustSet.from_config(to_table(self.config.trust))
        return self._trust

    def save_trust(self) -> None:
        self.config.update("trust", self.trust.to_config())
        self.config.save()

    @property
    def signing_key_path(self) -> Path:
        rel = self.config.site.signing_key
        if not rel:
            raise NotFound("this site has no signing key configured ([site] signing_key)")
        return (self.root / rel) if not os.path.isabs(rel) else Path(rel)

    @property
    def signing_key(self) -> SigningKey:
        if self._key is None:
            self._key = load_key(self.signing_key_path)
        return self._key

    def signing_key_id(self) -> str:
        """The signing key id, or '' if none can be loaded (for headers)."""
        try:
            return self.signing_key.id
        except DepotError:
            return ""

    @property
    def actor(self) -> str:
        return self.config.site.actor or os.environ.get("DEPOT_ACTOR") or default_actor()

    def now(self) -> datetime:
        return self.clock()

    # -- record --------------------------------------------------------------------------
    def audit(self, verb: str, target: str, outcome: str, detail: Any = None) -> None:
        """One audit row; deferred (``core.site.local_record``) if ``state.db`` cannot take it now."""
        row = {"actor": self.actor, "verb": verb, "target": target, "outcome": outcome, "detail": detail}
        row["time"] = format_time(self.now())
        try:
            self.state.audit(**row)
        except LocalStateError as exc:
            local_record.defer_audit(self, row, exc)

    def refuse_if_read_only(self, verb: str) -> None:
        """BadInput (exit 2) in read-only mode: ``verb`` would change state. ``action`` calls it
        first; an operation that only *sometimes* changes state (``fleet check --hydrate``) calls
        it for that case, with the same words."""
        if self.read_only:
            raise BadInput(f"{verb}: refused, the console is in read-only mode")

    @contextlib.contextmanager
    def action(self, verb: str, target: str) -> Iterator[ActionDetail]:
        """Run a state-changing action: refuse in read-only mode, write one audit row either way.

        The body may put details into the yielded dict; they land in the audit row. An action
        that ran to its end without fully succeeding sets ``detail.outcome`` (default ``ok``).
        """
        self.refuse_if_read_only(verb)
        detail = ActionDetail()
        try:
            yield detail
        except DepotError as exc:
            self.audit(verb, detail.target or target, f"error: {exc}", detail or None)
            raise
        except OSError as exc:  # disk full: one line and an audit row, like any failure
            if exc.errno not in DISK_FULL_ERRNOS:
                raise
            err = disk_full(exc)
            self.audit(verb, detail.target or target, f"error: {err}", detail or None)
            raise err from None
        except KeyboardInterrupt:
            self.audit(verb, detail.target or target, "interrupted", detail or None)
            raise
        self.audit(verb, detail.target or target, detail.outcome, detail or None)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        self.state.close()


def _resolve_store(root: Path, location: str) -> str:
    """Relative store paths are relative to the site directory; URLs pass through."""
    if "://" in location and not location.startswith("file://"):
        return location
    path = location.removeprefix("file://")
    return str(Path(path) if os.path.isabs(path) else (root / path))


def open_site(root: Path | str | None = None, **kw: Any) -> Site:
    """Open the site at ``root`` (or the default location) with a clear error if there is none."""
    path = Path(root) if root else default_site_dir()
    if not (path / CONFIG_NAME).exists():
        raise NotFound(f"no site at {path}: run 'console init' (or pass --site DIR / set {SITE_ENV})")
    return Site(path, **kw)
