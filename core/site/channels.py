"""Signed channel pointers: promote, rollback (a roll-forward), refresh, history, replay protection.

A channel (``production``, ``testing``…) is a mutable name for an immutable release. Every change
issues pointer version N+1, a DSSE envelope of the payload in DESIGN §4, stored twice:
``channels/<name>.json`` (the current pointer, compare-and-swap) and ``channels/<name>/<N+1>.json``
(write-once history). A rollback is version N+1 pointing at an older release, never a rewind.

Verification (``verify_pointer``) is one pure function over bytes, shared by nodes and the
console: it knows nothing of sites or databases, only the trust set and the caller's high-water
mark for the channel (last accepted version and the digest of those exact bytes).

Write order of an update, and why: **compare-and-swap first, history second.**

1. read the high-water floors (the database mark, then the history listing), then the current
   pointer bytes; verify them; if the current version's history file is missing (see below),
   write it from those verified bytes;
2. build and sign version N+1, and check that it verifies under the site's own trust set;
3. ``compare_and_swap(channels/<name>.json, current_bytes, new_bytes)``: the single point where
   racing writers are ordered. A loser fails here having issued nothing (at most it repaired
   the winner's record in step 1), so "a loser changes nothing" holds on any backend that has a compare-and-swap, with no extra store lock;
4. write ``channels/<name>/<N+1>.json`` (write-once) with the same bytes;
5. raise the high-water mark, record a ``channel_events`` row (and the caller's audit row).

Writing history first would break step 3's guarantee: two racers both compute N+1, the history
file is first-writer-wins, and the compare-and-swap winner could be the one whose history write
was silently dropped. With this order only the winner of version N+1 ever writes history N+1 with
new bytes; anybody else writing it (the healing below) copies the current pointer, i.e. the very
same bytes. A crash between steps 3 and 4 leaves the current pointer without its history file;
the next update writes it from the verified current bytes, and ``history`` shows the current
pointer meanwhile. The invariant "highest history version <= current version" also makes the
history a replay floor for a console without marks (read the listing *before* the pointer, as
marks are read before it, so a concurrent legitimate update never looks like a replay).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.clock import format_time
from core.errors import BadInput, Conflict, DepotError, LocalStateError, NotFound
from core.model.digest import canonical_json, digest_bytes
from core.site import local_record
from core.site.catalogue import load_release, resolve_release
from core.store.base import channel_history_path, channel_path, check_channel_name
from core.trust.pointers import (  # noqa: F401 (the rules and their names are re-exported)
    ACTIONS,
    CHANNEL_MISMATCH,
    EXPIRED,
    FIELDS,
    MALFORMED,
    MAX_POINTER_BYTES,
    MISSING,
    POINTER_SCHEMA,
    POINTER_TYPE,
    REPLAY,
    REVOKED,
    SAME_VERSION,
    THRESHOLD,
    UNTRUSTED,
    Pointer,
    PointerRejected,
    check_expiry,
    check_high_water,
    parse_pointer_payload,
    pointer_envelope,
    pointer_signatures,
    reject,
    verify_pointer,
)
from core.trust.signing import CHANNEL_TYPE, TrustSet, make_envelope

if TYPE_CHECKING:
    from core.site.proposals import Proposal
    from core.site.site import Site

_HISTORY_NAME = re.compile(r"^([1-9][0-9]{0,17})\.json$")


# -- high-water marks and events (the console's database) -----------------------------------------
def get_mark(site: Site, channel: str) -> tuple[int | None, str | None]:
    """(version, pointer digest) this console last accepted for ``channel``, or (None, None)."""
    return site.state.channel_marks.get(channel)


def _accept(site: Site, ptr: Pointer) -> None:
    """Raise the mark to ``ptr`` (never lower it: racing readers may accept older versions late).

    A database that cannot take the write (locked, full) defers it (``core.site.local_record``):
    the mark is a floor this console keeps for itself, the store's history stays one too.
    """
    try:
        site.state.channel_marks.raise_to(ptr.channel, ptr.version, ptr.digest, format_time(site.now()))
    except LocalStateError as exc:
        local_record.defer_channel(site, ptr.channel, exc)


def _settle(site: Site, ptr: Pointer) -> None:
    """After a swap: raise the mark and record the event; if the database refuses, the pointer is
    live all the same, so say that and defer the record."""
    try:
        site.state.channel_marks.raise_to(ptr.channel, ptr.version, ptr.digest, format_time(site.now()))
        _record(site, ptr)
    except LocalStateError as exc:
        local_record.defer_channel(
            site,
            ptr.channel,
            exc,
            f"{ptr.channel} version {ptr.version} is live in the store but the local record is behind",
        )


def _record(site: Site, ptr: Pointer) -> None:
    site.state.channel_events.record(
        {
            "channel": ptr.channel,
            "version": ptr.version,
            "release": ptr.release,
            "previous": ptr.previous or "",
            "action": ptr.action,
            "reason": ptr.reason,
            "actor": ptr.actor,
            "issued": ptr.issued,
            "expires": ptr.expires,
            "recorded_at": format_time(site.now()),
        }
    )


def channel_events(site: Site, channel: str | None = None) -> list[dict]:
    """Recorded channel events (newest first)."""
    return site.state.channel_events.rows(channel)


# -- history -------------------------------------------------------------------------------
@dataclass
class HistoryEntry:
    """One ``channels/<name>/<version>.json`` file: its pointer (if parseable) and any problem."""

    version: int
    pointer: Pointer | None
    problem: str = ""
    rule: str = ""
    data: bytes = field(default=b"", repr=False)

    @property
    def usable(self) -> bool:
        """Authentic history: verified now, or signed by a key revoked since (it was good then)."""
        return self.pointer is not None and self.rule in ("", REVOKED)

    def to_json(self) -> dict:
        doc: dict[str, Any] = {"version": self.version, "problem": self.problem}
        if self.pointer is not None:
            doc.update(self.pointer.to_json())
            doc["version"] = self.version
        return doc


def _history_entry(channel: str, version: int, data: bytes, trust: TrustSet) -> HistoryEntry:
    where = f"{channel} history version {version}"
    try:
        env = pointer_envelope(data, where)
        ptr = parse_pointer_payload(env.payload, digest_bytes(data), where)
    except PointerRejected as exc:
        return HistoryEntry(version, None, str(exc), exc.rule, data)
    if ptr.channel != channel:
        return HistoryEntry(
            version, None, f"{CHANNEL_MISMATCH}: {where} is a pointer for {ptr.channel!r}", CHANNEL_MISMATCH, data
        )
    if ptr.version != version:
        return HistoryEntry(version, None, f"{MALFORMED}: {where} holds version {ptr.version}", MALFORMED, data)
    try:
        ptr = replace(ptr, signed_by=pointer_signatures(env, trust, where, channel))
    except PointerRejected as exc:
        return HistoryEntry(version, ptr, str(exc), exc.rule, data)
    return HistoryEntry(version, ptr, "", "", data)


def _history_versions(site: Site, channel: str) -> list[int]:
    names = site.store.list_files(f"channels/{check_channel_name(channel)}")
    return sorted(int(m.group(1)) for n in names if (m := _HISTORY_NAME.match(n)))


def read_history(site: Site, channel: str) -> list[HistoryEntry]:
    """Every history file of ``channel``, oldest first, each verified against the trust set."""
    out = []
    for v in _history_versions(site, channel):
        data = site.store.read_file(channel_history_path(channel, v))
        if data is not None:
            entry = _history_entry(channel, v, data, site.trust)
            out.append(entry)
            if entry.pointer is not None and entry.rule == "":
                try:
                    _record(site, entry.pointer)
                except LocalStateError as exc:
                    local_record.defer_channel(site, channel, exc)
    return out


def _history_floor(site: Site, channel: str) -> tuple[int | None, str | None]:
    """The highest history version that fully verifies, and the digest of its bytes."""
    for v in reversed(_history_versions(site, channel)):
        data = site.store.read_file(channel_history_path(channel, v))
        if data is None:
            continue
        entry = _history_entry(channel, v, data, site.trust)
        if entry.pointer is not None and not entry.problem:
            return v, entry.pointer.digest
    return None, None


# -- reading the current pointer -------------------------------------------------------------
@dataclass
class Current:
    """The current pointer of a channel as read from the store (``pointer`` None: no channel yet)."""

    channel: str
    data: bytes | None
    pointer: Pointer | None


def read_current(site: Site, channel: str, now: datetime | None, *, for_update: bool = False) -> Current:
    """Read and verify ``channels/<channel>.json`` against the marks; raise the mark on success.

    The floors (database mark, history) are read before the pointer so that a legitimate update
    landing in between can only make the pointer newer than the floor, never older. With
    ``for_update``, a pointer whose only fault is a key revoked since is still accepted when its
    bytes are exactly the ones this console accepted before, so rotating keys never strands a
    channel: the update replaces it with a pointer signed by the current key.
    """
    try:
        return _read_current(site, channel, now, for_update=for_update)
    except PointerRejected as exc:
        if exc.rule != SAME_VERSION:
            raise
        said = str(exc).removeprefix(f"{SAME_VERSION}: ")
        raise reject(
            SAME_VERSION, f"{said}; two writers issued one version: run 'console channels repair {channel}'"
        ) from None


def _read_current(site: Site, channel: str, now: datetime | None, *, for_update: bool) -> Current:
    check_channel_name(channel)
    mark_v, mark_d = get_mark(site, channel)
    floor_v, floor_d = _history_floor(site, channel)
    data = site.store.read_file(channel_path(channel))
    if data is None:
        known = max(v for v in (mark_v, floor_v, 0) if v is not None)
        if known:
            raise reject(MISSING, f"{channel} pointer is gone, but version {known} was accepted before")
        return Current(channel, None, None)
    try:
        ptr = verify_pointer(data, channel, site.trust, mark_v, mark_d, None)
    except PointerRejected as exc:
        if not (for_update and exc.rule in (REVOKED, UNTRUSTED, THRESHOLD) and digest_bytes(data) == mark_d):
            raise
        where = f"{channel} pointer"
        ptr = parse_pointer_payload(pointer_envelope(data, where).payload, mark_d, where)
    check_high_water(ptr, floor_v, floor_d)
    _accept(site, ptr)
    if now is not None:
        check_expiry(ptr, now)
    return Current(channel, data, ptr)


# -- updates ---------------------------------------------------------------------------------
@dataclass
class ChannelUpdate:
    """The outcome of promote/rollback/refresh; ``changed`` is False for a no-op or a proposal
    (``proposal`` set: the pointer is the payload waiting for co-signatures, not published)."""

    pointer: Pointer
    changed: bool
    message: str = ""
    proposal: Proposal | None = None

    def to_json(self) -> dict:
        doc = self.pointer.summary()
        if self.proposal is not None:
            doc["proposal"] = self.proposal.to_json()
        elif not self.changed:
            doc["action"] = "none"
        return doc


def _outcome(detail: Any, issued: Pointer | Proposal) -> ChannelUpdate:
    """The ChannelUpdate of an ``_issue`` call, its facts in the audit detail."""
    if isinstance(issued, Pointer):
        detail.update(version=issued.version, previous=issued.previous)
        return ChannelUpdate(issued, True)
    detail.update(version=issued.pointer.version, proposal=True, signatures=list(issued.signed_by))
    detail.outcome = "proposed"
    return ChannelUpdate(issued.pointer, False, issued.message(), issued)


def lifetime(site: Site) -> timedelta:
    """How long a pointer signed now stays valid (``[channels] lifetime_days``, checked at load)."""
    return timedelta(days=site.config.channels.lifetime_days)


def _moved(channel: str, version: int) -> Conflict:
    return Conflict(
        f"channel moved meanwhile: {channel} version {version} was issued by someone else; "
        "nothing changed, look at 'console channels' and run the command again"
    )


def _issue(
    site: Site, cur: Current, release: str, action: str, reason: str, extra: dict[str, Any] | None = None
) -> Pointer | Proposal:
    """Sign version N+1, compare-and-swap it in, then write its history file (module docstring).

    On a channel whose threshold needs more than one key (``TrustSet.channel_threshold``), the
    payload signed by the site key becomes a proposal instead (``core.site.proposals``): nothing
    is published until ``approve`` collects enough distinct trusted signatures.
    """
    payload = _payload(site, cur, release, action, reason, extra)
    if site.trust.channel_threshold(cur.channel) > 1:
        from core.site.proposals import propose

        return propose(site, cur, payload)
    return publish_envelope(site, cur, make_envelope(CHANNEL_TYPE, payload, [site.signing_key]))


def _payload(
    site: Site, cur: Current, release: str, action: str, reason: str, extra: dict[str, Any] | None = None
) -> bytes:
    """Pointer payload version N+1 over ``cur`` (healing a lost history file of ``cur`` first);
    ``extra``: optional payload fields (a rollout stage pointer's ``audience``)."""
    store, channel = site.store, cur.channel
    version = cur.pointer.version + 1 if cur.pointer else 1
    moved = _moved(channel, version)
    if cur.pointer is not None:  # heal a history file lost to a crash after its swap
        try:
            store.write_file(channel_history_path(channel, cur.pointer.version), cur.data or b"")
        except Conflict:
            raise reject(
                SAME_VERSION,
                f"{channel} history version {cur.pointer.version} holds other "
                f"bytes than the current pointer; run 'console channels repair {channel}'",
            ) from None
    hist = channel_history_path(channel, version)
    if store.read_file(hist) is not None:
        if store.read_file(channel_path(channel)) != cur.data:
            raise moved
        raise reject(
            MALFORMED,
            f"{hist} already exists while the channel is at version {version - 1}: "
            "someone wrote history outside the console; investigate",
        )
    issued = site.now()
    payload = canonical_json(
        {
            "type": POINTER_TYPE,
            "schema": POINTER_SCHEMA,
            "channel": channel,
            "version": version,
            "release": release,
            "previous": cur.pointer.release if cur.pointer else None,
            "action": action,
            "reason": reason[:1024],
            "actor": site.actor,
            "issued": format_time(issued),
            "expires": format_time(issued + lifetime(site)),
            **(extra or {}),
        }
    )
    return payload


def publish_envelope(site: Site, cur: Current, data: bytes) -> Pointer:
    """Verify the signed pointer ``data`` (version N+1 over ``cur``) under the site's trust set,
    compare-and-swap it in over ``cur``'s bytes, write its history file, record it."""
    store, channel = site.store, cur.channel
    ptr = verify_pointer(data, channel, site.trust, cur.pointer.version if cur.pointer else None, None, None)
    try:
        store.compare_and_swap(channel_path(channel), cur.data, data)
    except Conflict:
        raise _moved(channel, ptr.version) from None
    store.write_file(channel_history_path(channel, ptr.version), data)
    _settle(site, ptr)
    return ptr


def _noop(cur: Current, message: str) -> ChannelUpdate:
    assert cur.pointer is not None
    return ChannelUpdate(cur.pointer, False, message)


def known_channels(site: Site) -> list[str]:
    """The channels this site has: a pointer in the store, or a mark this console keeps."""
    return _channel_names(site)


def unknown_channel(site: Site, channel: str, hint: str = "") -> NotFound:
    """The error for a channel name the site does not have, listing the ones it has."""
    names = known_channels(site)
    known = f"known: {', '.join(names)}" if names else "the site has no channels yet"
    return NotFound(f"unknown channel {channel!r} ({known}){hint}")


def require_known_channel(site: Site, channel: str) -> None:
    """Bad input unless ``channel`` is one of `known_channels` (so a typo is never created)."""
    check_channel_name(channel)
    if channel not in known_channels(site):
        raise unknown_channel(site, channel)


def promote(
    site: Site, ref: str, channel: str, reason: str = "", *, create: bool = False, override: str | None = None
) -> ChannelUpdate:
    """Point ``channel`` at release ``ref`` (full id or unique prefix) as version N+1.

    A channel the site does not have yet is created only with ``create`` (``promote --create``,
    ``channels create``): otherwise it is bad input naming the known channels, so a typo such as
    ``prodution`` never becomes a channel.
    """
    return _promote(site, ref, channel, reason, create=create, verb="promote", override=override)


def create_channel(site: Site, channel: str, ref: str, reason: str = "") -> ChannelUpdate:
    """``channels create``: a new channel, version 1 carrying ``ref``; bad input if it exists."""
    check_channel_name(channel)
    if channel in known_channels(site):
        cur = read_current(site, channel, None, for_update=True).pointer
        have = f" (version {cur.version}, {cur.release[7:19]})" if cur else ""
        release = resolve_release(site, ref)
        raise BadInput(f"channel {channel!r} exists{have}; use 'console promote {release[7:19]} --channel {channel}'")
    return _promote(site, ref, channel, reason, create=True, verb="channels create")


def _promote(
    site: Site, ref: str, channel: str, reason: str, *, create: bool, verb: str, override: str | None = None
) -> ChannelUpdate:
    """The channel's policy (``[channels.<name>]``, ``core.site.policy.gate``) is checked before
    anything is issued: an unmet check refuses (exit 1) unless ``override`` waives it where the
    policy permits; the override and what it waived go into the pointer's reason and the audit row."""
    from core.site.policy import gate

    check_channel_name(channel)
    with site.action(verb, channel) as detail:
        if not create and channel not in known_channels(site):
            try:
                short_ref = resolve_release(site, ref)[7:19]
            except DepotError:
                short_ref = ref
            raise unknown_channel(
                site,
                channel,
                f"; to create it: 'console promote {short_ref} --channel {channel} --create' "
                f"or 'console channels create {channel} {short_ref}'",
            )
        release = resolve_release(site, ref)
        detail.update(release=release, reason=reason)
        load_release(site, release)
        cur = read_current(site, channel, None, for_update=True)
        if cur.pointer is not None and cur.pointer.release == release:
            detail["noop"] = True
            return _noop(
                cur,
                f"{channel} already points at {release[7:19]} (version {cur.pointer.version}); "
                "nothing to do (use 'refresh' to renew its expiry)",
            )
        waiver, waived = gate(site, release, channel, override)
        if waived:
            detail.update(override=override, waived=waived)
            reason = f"{reason}; {waiver}" if reason else waiver
        return _outcome(detail, _issue(site, cur, release, "promote", reason))


def rollback_target(history: list[HistoryEntry], current: Pointer, steps: int) -> str:
    """The release ``steps`` distinct releases back in the channel's history (current excluded)."""
    if steps < 1:
        raise BadInput("--steps must be at least 1")
    seen: list[str] = []
    for entry in sorted((e for e in history if e.usable and e.version < current.version), key=lambda e: -e.version):
        rel = entry.pointer.release  # type: ignore[union-attr]
        if rel != current.release and rel not in seen:
            seen.append(rel)
    if steps > len(seen):
        raise BadInput(
            f"channel {current.channel} has only {len(seen)} earlier release(s) in its history; cannot go back {steps}"
        )
    return seen[steps - 1]


def rollback(
    site: Site, channel: str, to: str | None = None, steps: int | None = None, reason: str = ""
) -> ChannelUpdate:
    """Roll ``channel`` forward to an older release it carried before (``to``, or ``steps`` back, default 1)."""
    check_channel_name(channel)
    if to is not None and steps is not None:
        raise BadInput("rollback: give --to or --steps, not both")
    with site.action("rollback", channel) as detail:
        detail["reason"] = reason
        cur = read_current(site, channel, None, for_update=True)
        if cur.pointer is None:
            raise unknown_channel(site, channel)
        history = read_history(site, channel)
        if to is not None:
            release = resolve_release(site, to)
            if release == cur.pointer.release:
                detail["noop"] = True
                return _noop(
                    cur,
                    f"{channel} already points at {release[7:19]} (version {cur.pointer.version}); "
                    "nothing to roll back",
                )
            if not any(e.usable and e.pointer.release == release for e in history):  # type: ignore[union-attr]
                raise BadInput(f"release {release[7:19]} was never on channel {channel}: use promote")
        else:
            release = rollback_target(history, cur.pointer, steps or 1)
        detail["release"] = release
        load_release(site, release)
        return _outcome(detail, _issue(site, cur, release, "rollback", reason))


def refresh(site: Site, channel: str, reason: str = "") -> ChannelUpdate:
    """Re-sign the current pointer as version N+1 with a fresh expiry (same release); ``reason``
    goes into the pointer (``refresh`` when none is given) and the audit row, as promote's does."""
    check_channel_name(channel)
    reason = reason or "refresh"
    with site.action("refresh", channel) as detail:
        detail["reason"] = reason
        cur = read_current(site, channel, None, for_update=True)
        if cur.pointer is None:
            raise NotFound(f"channel {channel} has no pointer to refresh")
        detail["release"] = cur.pointer.release
        aud = cur.pointer.audience  # a rollout stage pointer keeps its audience (issue 16)
        extra = {"audience": aud.to_json()} if aud is not None else None
        return _outcome(detail, _issue(site, cur, cur.pointer.release, "refresh", reason or "refresh", extra))


def refresh_all(
    site: Site, channels: list[str] | None = None, reason: str = ""
) -> tuple[list[ChannelUpdate], list[tuple[str, DepotError]]]:
    """Refresh each channel (all by default) independently, each with ``reason``; failures do not
    stop the others."""
    done, failed = [], []
    for ch in channels if channels is not None else site.store.list_channels():
        try:
            done.append(refresh(site, ch, reason))
        except DepotError as exc:
            failed.append((ch, exc))
    return done, failed


# -- repair ----------------------------------------------------------------------------------
@dataclass
class RepairPlan:
    """What ``channels repair`` found on a channel and the pointer it would issue.

    ``problems`` empty: the channel is healthy and nothing is issued. Otherwise ``version`` (above
    every version seen: current pointer, any history file, this console's mark) carrying
    ``release`` is signed and swapped in over the current bytes, history written, audited.
    """

    channel: str
    problems: list[str]
    current_version: int | None
    current_release: str | None
    highest: int
    version: int
    release: str | None
    action: str
    done: bool = False
    pointer: Pointer | None = None

    def to_json(self) -> dict:
        return {
            "channel": self.channel,
            "problems": self.problems,
            "current_version": self.current_version,
            "current_release": self.current_release,
            "highest_version_seen": self.highest,
            "version": self.version if self.problems else None,
            "release": self.release,
            "action": self.action if self.problems else "none",
            "repaired": self.done,
        }


def plan_repair(site: Site, channel: str, release_ref: str | None = None) -> RepairPlan:
    """Inspect ``channel`` (current pointer, every history file, the local mark) without writing."""
    check_channel_name(channel)
    problems: list[str] = []
    try:
        read_current(site, channel, None, for_update=True)
    except DepotError as exc:
        problems.append(str(exc))
    data = site.store.read_file(channel_path(channel))
    cur: Pointer | None = None
    if data is not None:
        try:  # signatures and form only: marks and history are what may be inconsistent
            cur = verify_pointer(data, channel, site.trust, None, None, None)
        except PointerRejected as exc:
            if not any(str(exc) in p for p in problems):
                problems.append(f"current pointer: {exc}")
    history = read_history(site, channel)
    for e in history:
        if cur is not None and e.version == cur.version and e.data != data:
            problems.append(
                f"history version {e.version} holds other bytes than the current pointer "
                f"(two writers issued version {e.version})"
            )
        elif cur is not None and e.version > cur.version:
            problems.append(f"history version {e.version} is above the current pointer (version {cur.version})")
    mark_v, _ = get_mark(site, channel)
    versions = [v for v in (cur.version if cur else None, mark_v) if v is not None]
    versions += [e.version for e in history]
    highest = max(versions, default=0)
    if not history and data is None and mark_v is None:
        raise NotFound(f"channel {channel} has no pointer, no history and no mark: nothing to repair")
    if release_ref is not None:
        release: str | None = resolve_release(site, release_ref)
    elif cur is not None:
        release = cur.release
    else:
        usable = [e for e in history if e.usable]
        release = usable[-1].pointer.release if usable else None  # type: ignore[union-attr]
    if problems and release is None:
        raise BadInput(f"channel {channel}: no verifiable pointer to take the release from; give --release ID")
    if release is not None and release_ref is not None and not problems:
        if cur is None or release != cur.release:
            problems.append(f"asked to carry {release[7:19]}")
    action = "refresh" if cur is not None and release == cur.release else "promote"
    return RepairPlan(
        channel,
        problems,
        cur.version if cur else None,
        cur.release if cur else None,
        highest,
        highest + 1,
        release,
        action,
    )


def repair(
    site: Site, channel: str, release_ref: str | None = None, *, yes: bool = False, reason: str = ""
) -> RepairPlan:
    """``channels repair``: dry run by default; with ``yes``, issue the planned pointer.

    The new version is above every version seen, so every verifier (this console, others, the
    nodes, whichever of two same-numbered pointers they accepted) takes it as newer. The swap is
    a compare-and-swap over the bytes read here: a channel that moves meanwhile is a conflict.
    """
    plan = plan_repair(site, channel, release_ref)
    if not yes or not plan.problems:
        return plan
    assert plan.release is not None
    with site.action("channels repair", channel) as detail:
        detail.update(release=plan.release, version=plan.version, problems=plan.problems)
        load_release(site, plan.release)
        store = site.store
        data = store.read_file(channel_path(channel))
        hist = channel_history_path(channel, plan.version)
        if store.read_file(hist) is not None:
            raise Conflict(f"channel moved meanwhile: {hist} appeared; nothing changed, run repair again")
        issued = site.now()
        payload = canonical_json(
            {
                "type": POINTER_TYPE,
                "schema": POINTER_SCHEMA,
                "channel": channel,
                "version": plan.version,
                "release": plan.release,
                "previous": plan.current_release,
                "action": plan.action,
                "reason": reason or f"repair: {plan.problems[0]}"[:1000],
                "actor": site.actor,
                "issued": format_time(issued),
                "expires": format_time(issued + lifetime(site)),
            }
        )
        new = make_envelope(CHANNEL_TYPE, payload, [site.signing_key])
        ptr = verify_pointer(new, channel, site.trust, plan.highest or None, None, None)
        try:
            store.compare_and_swap(channel_path(channel), data, new)
        except Conflict:
            raise Conflict(
                f"channel moved meanwhile: {channel} changed during repair; nothing changed, run it again"
            ) from None
        store.write_file(hist, new)
        _settle(site, ptr)
    plan.done, plan.pointer = True, ptr
    return plan


# -- status and verification -----------------------------------------------------------------
def _channel_names(site: Site) -> list[str]:
    return sorted(set(site.store.list_channels()) | set(site.state.channel_marks.channels()))


def channel_status(site: Site) -> list[dict]:
    """One row per channel: channel, version, release, action, actor, issued, expires, seconds_left,
    reason, signed_by, problem ('' when the pointer verifies and has not expired)."""
    now = site.now()
    rows = []
    for ch in _channel_names(site):
        row: dict[str, Any] = {
            "channel": ch,
            "version": None,
            "release": None,
            "action": None,
            "actor": None,
            "issued": None,
            "expires": None,
            "seconds_left": None,
            "reason": None,
            "signed_by": [],
            "problem": "",
        }
        try:
            ptr = read_current(site, ch, None).pointer
            if ptr is None:
                continue
            row.update(
                version=ptr.version,
                release=ptr.release,
                action=ptr.action,
                actor=ptr.actor,
                issued=ptr.issued,
                expires=ptr.expires,
                seconds_left=ptr.seconds_left(now),
                reason=ptr.reason,
                signed_by=list(ptr.signed_by),
            )
            check_expiry(ptr, now)
        except DepotError as exc:
            row["problem"] = str(exc)
        rows.append(row)
    return rows


def carried(site: Site, rows: list[dict] | None = None) -> dict[str, tuple[str, int]]:
    """channel -> (release id, version): what each channel carries, the one answer both faces give.

    It is `channel_status` (``console channels``): each current pointer read from the store and
    verified (raising this console's marks). A channel whose pointer does not verify carries
    nothing; an expired one still carries its release (it is shown with its problem). Pass the
    ``rows`` of a `channel_status` call already made to avoid reading the store twice.
    """
    return {
        r["channel"]: (r["release"], r["version"])
        for r in (channel_status(site) if rows is None else rows)
        if r["release"]
    }


def verify_channels(site: Site) -> list[str]:
    """Check every channel's current pointer and history; return problems, one line each.

    History files signed by a key revoked since are fine (they were valid when issued); a gap
    below the current version, a forged or foreign history file, or a current pointer that fails
    any rule of ``verify_pointer`` is a problem.
    """
    problems: list[str] = []
    now = site.now()
    for ch in _channel_names(site):
        try:
            cur = read_current(site, ch, now)
        except DepotError as exc:
            problems.append(f"{ch}: {exc}")
            cur = None
        history = read_history(site, ch)
        for e in history:
            if e.problem and e.rule != REVOKED:
                problems.append(f"{ch}: history version {e.version}: {e.problem}")
        if cur is not None and cur.pointer is not None:
            have = {e.version for e in history}
            missing = [v for v in range(1, cur.pointer.version) if v not in have]
            if missing:
                problems.append(f"{ch}: history is missing version(s) {', '.join(map(str, missing))}")
    return problems


def history_rows(site: Site, channel: str) -> list[dict]:
    """Every version of ``channel`` from the store (oldest first), each with its verification problem.

    If the current pointer's history file is not written yet (a crash right after its swap),
    the current pointer is listed in its place.
    """
    entries = read_history(site, channel)
    rows = [e.to_json() for e in entries]
    data = site.store.read_file(channel_path(channel))
    if not entries and data is None:
        raise unknown_channel(site, channel)
    if data is not None:
        try:
            cur = read_current(site, channel, None)
        except DepotError:
            cur = None
        if cur is not None and cur.pointer is not None and cur.pointer.version not in {e.version for e in entries}:
            rows.append(dict(cur.pointer.to_json(), problem="history file not written yet (current pointer)"))
    return rows
