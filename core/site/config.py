"""``console.toml``: the site's configuration, one frozen dataclass per section.

Every key is declared here, with its type, default and meaning (``core.settings.setting``), so
the CLI, the TUI and the README agree on them: the README's configuration table is
``markdown_table()``, and ``tests/unit/test_config.py`` fails when the two differ. The file is
validated once, in ``Config.load``: an unknown section or key, a value of the wrong type or out of
range is refused with one line naming the file, the section and the key (``BadInput``, exit 2).
Callers read typed attributes (``site.config.publish.workers``) and never re-check.

The file is read with tomllib and written (every declared key, defaults included) with tomli-w.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.durable import atomic_write
from core.errors import BadInput, TrustError
from core.settings import check_value, markdown_rows, parse, setting, to_table
from core.store import DEFAULT_DEADLINE_S, DEFAULT_RETRIES, DEFAULT_TIMEOUT_S

CONFIG_NAME = "console.toml"
CONFIG_MODE = 0o600  # written so whatever the umask; hooks are refused from a file others can write


@dataclass(frozen=True)
class SiteSettings:
    """``[site]``: what the site is called, where its store is, who signs and who acts."""

    name: str = setting(
        "depot-site", "the site's name, shown in the console header; `console init` sets it to the directory's name"
    )
    store: str = setting("store", "path (relative to the site) or `http(s)://` URL(s), comma-separated mirrors")
    signing_key: str = setting(
        "",
        "PKCS8 PEM Ed25519 key (mode 0600) that signs releases and pointers, relative "
        "to the site; `$DEPOT_KEY_PASSPHRASE` if encrypted",
        shown="`keys/signing.pem` (written by `console init`)",
    )
    actor: str = setting("", "who the audit log names; empty: `$DEPOT_ACTOR`, else `user@host`")
    busy_timeout_s: float = setting(
        10.0,
        "seconds a write to `state.db` waits for another process's lock; past it the store change "
        "stands, the local record is deferred and caught up by the next command",
        ge=0,
        le=3600,
    )


@dataclass(frozen=True)
class PublishSettings:
    """``[publish]``: hooks around a publish and its resource limits."""

    pre_publish: str = setting(
        "",
        "shell hook run before anything is written (e.g. `cvmfs_server transaction`); "
        "a failing pre-hook aborts with nothing written. Hooks run in the site directory "
        "with `$DEPOT_RELEASE`, `$DEPOT_RELEASE_NAME` and `$DEPOT_STORE` set",
    )
    post_publish: str = setting("", "shell hook run after a successful publish (e.g. `cvmfs_server publish`)")
    abort_publish: str = setting(
        "", "shell hook run when a publish fails after `pre_publish` succeeded (e.g. `cvmfs_server abort`)"
    )
    workers: int = setting(
        0, "hashing/compression threads; 0: the CPU count, at most 4", ge=0, le=1024, shown="`0` (cores, max 4)"
    )
    max_manifest_bytes: int = setting(
        16 << 20, "manifests larger than this are refused before parsing", ge=1, shown="`16777216` (16 MiB)"
    )
    progress_interval_s: float = setting(0.5, "seconds between progress lines on a terminal (stderr)", ge=0)


@dataclass(frozen=True)
class ChannelsSettings:
    """``[channels]``: how long a signed channel pointer stays valid."""

    lifetime_days: float = setting(30, "pointer expiry in days; `console refresh` (cron) re-signs", gt=0, le=36500)


@dataclass(frozen=True)
class NodeSettings:
    """``[node]``: how the console reaches the depot on its nodes (``fleet check``)."""

    remote_console: str | list[str] = setting(
        "console",
        "the console on the nodes, as a command line or a list "
        "of words; `fleet check --smoke/--hydrate` runs `<it> node ...` "
        "over ssh",
    )
    root: str = setting("", "node root passed as `--root` to the nodes' console; empty: the nodes' default")


@dataclass(frozen=True)
class FleetSettings:
    """``[fleet]``: fleet check over the operator's ssh."""

    fanout: int = setting(64, "nodes worked on at once", ge=1, le=100000)
    connect_timeout: float = setting(10, "ssh connect timeout per node, seconds", gt=0)
    timeout: float = setting(120, "deadline of each ssh call (probe, hydrate, smoke), seconds", gt=0)
    ssh_config: str = setting("", "ssh config file (`ssh -F`), relative to the site; empty: ssh's own")
    groups: dict[str, str] = setting({}, 'named node sets, e.g. `compute = "n[01-64]"`, used as `@compute`')
    remote_console: str | list[str] = setting("", "overrides `[node] remote_console` for fleet check")
    root: str = setting("", "overrides `[node] root` for fleet check")
    store: str = setting("", "the store as the nodes reach it (`fleet check --hydrate`); empty: the site's store")
    trust: str = setting("", "trust file path on the nodes (`fleet check --hydrate`), passed as `--trust`")
    max_output_bytes: int = setting(
        1 << 20,
        "output cap per node and ssh call (stdout, and stderr, each): a node that writes more "
        "has its ssh killed and is `bad-output`",
        ge=1,
        shown="`1048576` (1 MiB)",
    )
    max_nodes: int = setting(
        100000, "largest node set a fleet check accepts; a larger one is refused before it is expanded", ge=1
    )
    transport: str = setting(
        "ssh", "how fleet check reaches nodes: `ssh` (one ssh per node) or `slurm` (one `srun` step per stage)"
    )
    slurm_partition: str = setting("", "Slurm partition for `--via slurm` (`srun --partition`); empty: the default")
    slurm_feature: str = setting("", "Slurm node feature(s) for `--via slurm` (`srun --constraint`)")
    slurm_account: str = setting("", "Slurm account for `--via slurm` (`srun --account`)")
    slurm_qos: str = setting("", "Slurm QOS for `--via slurm` (`srun --qos`)")
    slurm_options: list[str] = setting([], "more `srun` options for `--via slurm`, verbatim")
    slurm_immediate_s: float = setting(
        10, "seconds Slurm may take to grant a fleet step (`srun --immediate`); then the nodes are `job-refused`", gt=0
    )


@dataclass(frozen=True)
class HttpSettings:
    """``[http]``: how the console reaches an HTTP(S) store."""

    proxies: list[str] = setting(
        [], "proxy URLs tried in order; empty: `HTTP(S)_PROXY`/`NO_PROXY` from the environment"
    )
    timeout_s: float = setting(
        DEFAULT_TIMEOUT_S,
        "per-request timeout in seconds: each read, write and connection-pool wait (a connect waits at most 5 s)",
        gt=0,
        le=86400,
    )
    retries: int = setting(
        DEFAULT_RETRIES,
        "retries of a request, over every mirror, after a connection error, "
        "timeout or 5xx answer (pauses 0.2 s, 0.4 s, then 0.8 s)",
        ge=0,
        le=100,
    )
    deadline_s: float = setting(
        DEFAULT_DEADLINE_S,
        "overall deadline of one HTTP operation, retries included, however slowly the server answers; "
        "object transfers get 1 s more per MiB promised",
        gt=0,
        le=86400,
    )


@dataclass(frozen=True)
class BuildSettings:
    """``[build]``: the build queue."""

    parallel: int = setting(2, "builds run at once", ge=1, le=1024)
    grace_s: float = setting(10.0, "seconds a cancelled build's processes get between SIGTERM and SIGKILL", gt=0)
    builders: dict[str, str] = setting({}, 'the site\'s own builders, `name = "module:ClassName"`')
    executor: str = setting(
        "local", "where targets build: `local` (on the console host) or `slurm` (one `sbatch` job per target)"
    )
    slurm_shared_dir: str = setting(
        "", "`--executor slurm`: a directory the console and every node see; jobs build there, images come back there"
    )
    slurm_options: list[str] = setting([], "`--executor slurm`: `sbatch` options for every target, verbatim")
    slurm_targets: dict[str, str] = setting(
        {}, '`--executor slurm`: more `sbatch` options per target, e.g. `zen4 = "--partition=zen4 --constraint=zen4"`'
    )
    slurm_python: str = setting(
        "",
        "`--executor slurm`: the Python that runs a target on the node (with the console importable); "
        "empty: this console's own interpreter and source tree",
    )
    slurm_poll_s: float = setting(1.0, "`--executor slurm`: seconds between looks at a job's state and output", gt=0)


@dataclass(frozen=True)
class TrustSettings:
    """``[trust]``: the trust set (maintained by ``console keys``; parsed by ``TrustSet.from_config``)."""

    thresholds: dict[str, int] = setting(
        {"release": 1, "channel": 1}, "signatures needed per role (`release`, `channel`)"
    )
    keys: list[dict[str, Any]] = setting(
        [], "trusted public keys: `id`, `public`, `roles`, `revoked`, `name`", shown="the site key, both roles"
    )


@dataclass(frozen=True)
class CvmfsSettings:
    """``[cvmfs]``: CernVM-FS repositories that receive releases and follow channels (DESIGN §10)."""

    targets: list[dict[str, Any]] = setting(
        [],
        "repositories published into: tables with `repo` (fully qualified name, e.g. `depot.example.org`) and "
        "optionally `name`, `mount` (default `/cvmfs/<repo>`), `node_mount` (the path nodes see, default "
        "`mount`), `prefix`, `channels` (default: every channel), `mode` and the command templates below",
    )
    prefix: str = setting("depot", "directory inside the repository that holds `releases/` and `channels/`")
    mode: str = setting(
        "transaction",
        "`transaction` (open, write the expanded release, publish) or `ingest` (stream a tar of each new "
        "release to the ingest command, which skips the transaction's overlay)",
    )
    transaction: str = setting(
        "cvmfs_server transaction {repo}",
        "command that opens a transaction; words, no shell; `{repo}`, `{mount}` are replaced",
    )
    publish: str = setting("cvmfs_server publish {repo}", "command that publishes the open transaction")
    abort: str = setting("cvmfs_server abort -f {repo}", "command that discards the open transaction")
    ingest: str = setting(
        "cvmfs_server ingest --tar_file - --base_dir {base_dir} {repo}",
        'command that ingests a release tar from stdin (`mode = "ingest"`); `{base_dir}` is the release directory',
    )
    lock_timeout_s: float = setting(
        0, "seconds to wait for another publish or gc on the same repository; 0: refuse at once (exit 3)", ge=0
    )


#: The checks a channel policy can require (``[channels.<name>] require``), in the order they are evaluated.
POLICY_CHECKS = ("smoke-every-arch", "no-rejected-caches", "same-fingerprint", "startup", "soak")


@dataclass(frozen=True)
class ChannelPolicy:
    """``[channels.<name>]``: what a promote onto channel ``<name>`` needs (``core.site.policy``)."""

    require: list[str] = setting(
        [],
        "evidence a promote onto the channel needs: `smoke-every-arch` (a passing smoke of the release on at "
        "least one node of every micro-architecture in the inventory that one of its images serves), "
        "`no-rejected-caches` (no smoke of it saw `Rejecting cache file`), `same-fingerprint` (one module "
        "fingerprint per image across nodes), `startup` (smoke wall time no worse than the current "
        "release's, per micro-architecture, by more than `startup_margin`), `soak` (on `soak_channel` for "
        "`soak_hours`)",
    )
    startup_margin: float = setting(
        0.1, "how much slower than the current release a start-up may be (0.1: 10 %)", ge=0, le=100
    )
    soak_channel: str = setting("testing", "the channel the `soak` check looks at")
    soak_hours: float = setting(24, "hours the release must have been current on `soak_channel`", ge=0)
    override: list[str] = setting(
        [], "checks `promote --override REASON` may waive (`*`: every one); empty: no override"
    )
    canary: str = setting("", "the canary node set `rollout start` uses when `--canary` is not given")


#: Section name -> its dataclass, in the order the file is written.
SECTIONS: dict[str, type] = {
    "site": SiteSettings,
    "publish": PublishSettings,
    "channels": ChannelsSettings,
    "node": NodeSettings,
    "fleet": FleetSettings,
    "http": HttpSettings,
    "build": BuildSettings,
    "trust": TrustSettings,
    "cvmfs": CvmfsSettings,
}

#: Keys that earlier versions declared and wrote but nothing ever read: accepted on load (every
#: ``console init`` wrote them), dropped, and not written back.
RETIRED: frozenset[tuple[str, str]] = frozenset({("node", "keep")})


class Config:
    """The parsed, validated configuration: one typed attribute per section; ``save`` writes it back."""

    def __init__(self, path: Path, sections: dict[str, Any] | None = None) -> None:
        self.path = path
        self._sections = {name: (sections or {}).get(name) or cls() for name, cls in SECTIONS.items()}
        #: ``[channels.<name>]`` tables: channel -> its promotion policy.
        self.policies: dict[str, ChannelPolicy] = dict((sections or {}).get(POLICIES) or {})

    @classmethod
    def load(cls, path: Path) -> Config:
        try:
            raw = tomllib.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise BadInput(f"no site at {path.parent} ({CONFIG_NAME} missing): run 'console init' first") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BadInput(f"{path}: invalid TOML ({exc})") from None
        config = cls(path, parse_config(raw, path))
        if config.hooks():
            check_hook_config_safe(path)
        return config

    def hooks(self) -> dict[str, str]:
        """The publish hooks this config declares (name -> shell line), empty ones left out."""
        p = self.publish
        declared = {"pre_publish": p.pre_publish, "post_publish": p.post_publish, "abort_publish": p.abort_publish}
        return {name: line for name, line in declared.items() if line}

    @classmethod
    def new(cls, path: Path, **site: Any) -> Config:
        cfg = cls(path)
        for key, value in site.items():
            cfg.set("site", key, value)
        return cfg

    # -- typed sections --------------------------------------------------------------------
    @property
    def site(self) -> SiteSettings:
        return self._sections["site"]

    @property
    def publish(self) -> PublishSettings:
        return self._sections["publish"]

    @property
    def channels(self) -> ChannelsSettings:
        return self._sections["channels"]

    @property
    def node(self) -> NodeSettings:
        return self._sections["node"]

    @property
    def fleet(self) -> FleetSettings:
        return self._sections["fleet"]

    @property
    def http(self) -> HttpSettings:
        return self._sections["http"]

    @property
    def build(self) -> BuildSettings:
        return self._sections["build"]

    @property
    def trust(self) -> TrustSettings:
        return self._sections["trust"]

    @property
    def cvmfs(self) -> CvmfsSettings:
        return self._sections["cvmfs"]

    # -- changes ---------------------------------------------------------------------------
    def set(self, section: str, key: str, value: Any) -> None:
        """Change one key (validated like the file; takes effect at once, written by ``save``)."""
        self.update(section, {key: value})

    def update(self, section: str, values: dict[str, Any]) -> None:
        """Change several keys of one section, each validated like the file."""
        cls = SECTIONS.get(section)
        if cls is None:
            raise BadInput(f"{self.path}: unknown section [{section}] (known: {', '.join(SECTIONS)})")
        known = {f.name for f in dataclasses.fields(cls)}
        for key, value in values.items():
            if key not in known:
                raise BadInput(f"{self.path}: [{section}] unknown key {key!r} (known: {', '.join(sorted(known))})")
            check_value(cls, key, value, f"{self.path}: [{section}] ")
        self._sections[section] = dataclasses.replace(self._sections[section], **values)

    def to_toml(self) -> dict[str, dict[str, Any]]:
        """Every section with every declared key (defaults included), as written to the file;
        channel policies as ``[channels.<name>]`` tables."""
        doc = {name: to_table(value) for name, value in self._sections.items()}
        for name, policy in sorted(self.policies.items()):
            doc["channels"][name] = to_table(policy)
        return doc

    def save(self) -> None:
        """Write atomically (temp then rename) so a crash never leaves half a config; mode 0600."""
        import tomli_w  # only when the file is written, not by every command that reads it

        atomic_write(self.path, tomli_w.dumps(self.to_toml()).encode("utf-8"), CONFIG_MODE, durable=False)


def check_hook_config_safe(path: Path | str) -> None:
    """TrustError (exit 4, one line) unless only its owner can change the config at ``path``: the
    file and its directory owned by us (or root) and not writable by group or others (a sticky
    directory excepted), as ssh refuses a loose ``~/.ssh/config``. Called when a config declares
    hooks: they run as the operator, so a neighbour who can edit the file must not choose them."""
    path = Path(path)
    me = os.geteuid()
    for target, what in ((path, "file"), (path.absolute().parent, "directory")):
        try:
            st = target.stat()
        except OSError as exc:
            raise BadInput(f"cannot check {target}: {exc.strerror}") from None
        if st.st_uid not in (me, 0):
            problem, fix = f"{what} {target} is owned by uid {st.st_uid}, not by you", f"chown $USER {target}"
        elif st.st_mode & 0o022 and not (what == "directory" and st.st_mode & stat.S_ISVTX):
            who = "group and others" if st.st_mode & 0o022 == 0o022 else "group" if st.st_mode & 0o020 else "others"
            problem = f"{what} {target} is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o})"
            fix = f"chmod go-w {target}"
        else:
            continue
        raise TrustError(f"{path} declares publish hooks, which run as you, but the {problem}: refused; {fix}")


def parse_config(raw: dict[str, Any], path: Path | str) -> dict[str, Any]:
    """Section name -> validated dataclass for a parsed ``console.toml`` (missing ones: defaults)."""
    out: dict[str, Any] = {}
    for section, values in raw.items():
        cls = SECTIONS.get(section)
        if cls is None:
            raise BadInput(f"{path}: unknown section [{section}] (known: {', '.join(SECTIONS)})")
        if not isinstance(values, dict):
            raise BadInput(f"{path}: [{section}] must be a table")
        values = {k: v for k, v in values.items() if (section, k) not in RETIRED}
        if section == "channels":
            values = dict(values)
            out[POLICIES] = _parse_policies(values, path)
        out[section] = parse(cls, values, f"{path}: [{section}] ")
    return out


#: Key of the parsed channel policies in ``parse_config``'s answer (not a section of its own).
POLICIES = "channels.*"


def _parse_policies(values: dict[str, Any], path: Path | str) -> dict[str, ChannelPolicy]:
    """Take the ``[channels.<name>]`` tables out of ``values`` (the ``[channels]`` table) and parse them."""
    from core.store.base import check_channel_name

    policies = {}
    for name in [k for k, v in values.items() if isinstance(v, dict)]:
        where = f"{path}: [channels.{name}] "
        try:
            check_channel_name(name)
        except BadInput as exc:
            raise BadInput(f"{where}{exc}") from None
        policy = parse(ChannelPolicy, values.pop(name), where)
        for key, allowed in (("require", POLICY_CHECKS), ("override", (*POLICY_CHECKS, "*"))):
            bad = [c for c in getattr(policy, key) if c not in allowed]
            if bad:
                raise BadInput(f"{where}{key}: unknown check(s) {', '.join(bad)} (known: {', '.join(POLICY_CHECKS)})")
        policies[name] = policy
    return policies


def markdown_table() -> str:
    """The README's ``console.toml`` table, generated from the declarations above."""
    rows = ["| section | key | default | meaning |", "| --- | --- | --- | --- |"]
    for name, cls in SECTIONS.items():
        rows += markdown_rows(cls, name)
        if name == "channels":
            rows += markdown_rows(ChannelPolicy, "channels.<name>")
    return "\n".join(rows)
