"""The console's Textual messages: how workers hand results back and how screens and the app
tell each other that something changed.

Store, database and SSH work runs in workers (``screens.base.run_site_work``, the fleet check's
``@work`` coroutine, ``PagedTable``'s background reload). A worker never calls into a screen: it
posts one of these to the widget that started it (``post_message`` is thread-safe, and a message
for a screen that has closed meanwhile is dropped), and that widget handles it with ``@on(...)``
on the UI thread. Results stay with their screen (``bubble=False``); ``ChannelUpdated`` bubbles up
to the app, which tells the operator and has every open view reload (``ReloadView``), and
``FleetCheckRecorded`` goes to the app, which has every open Nodes view reload.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from textual.widgets import DataTable
    from textual.widgets.tree import TreeNode

    from core.fleet.check import CheckOptions, NodeCheck
    from core.model.manifest import Release
    from core.site.channels import ChannelUpdate
    from core.site.diff import ReleaseDiff


# -- between screens and the app ----------------------------------------------------------------
class ChannelUpdated(Message):
    """A promote, roll back or renew went through (posted by its worker; bubbles to the app, which
    shows ``title`` and the update, plus the headless ``command`` when given, then reloads every
    open view)."""

    def __init__(self, update: ChannelUpdate, *, title: str, command: str = "") -> None:
        super().__init__()
        self.update = update
        self.title = title
        self.command = command


class FleetCheckRecorded(Message):
    """A fleet check's outcome is in the inventory (posted to the app by the recording worker, so
    it arrives even when the check's screen has closed): the Nodes views reload and show it."""

    def __init__(self, nodeset: str) -> None:
        super().__init__()
        self.nodeset = nodeset


class ReloadView(Message, bubble=False):
    """Re-read what the view shows (the app posts it to every open view after a change; a screen
    posts it to itself when a change failed and what it shows may be stale)."""


# -- results of a screen's workers ----------------------------------------------------------------
class CatalogueSynced(Message, bubble=False):
    """The catalogue was synced with the store: releases left out, and channel names per release."""

    def __init__(self, problems: list[str], by_release: dict[str, list[str]]) -> None:
        super().__init__()
        self.problems = problems
        self.by_release = by_release


class ChannelsLoaded(Message, bubble=False):
    """Each channel's status rows (``core.site.channels.channel_status``)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self.rows = rows


class HistoryLoaded(Message, bubble=False):
    """Every pointer version of the highlighted channel."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self.rows = rows


class RollbackTargetFound(Message, bubble=False):
    """The release a roll back of the channel in ``row`` would go to (confirm next)."""

    def __init__(self, row: dict[str, Any], release: str) -> None:
        super().__init__()
        self.row = row
        self.release = release


class NodesSummarised(Message, bubble=False):
    """Nodes per micro-architecture with each channel's image, and the nodes no image fits."""

    def __init__(self, rows: list[tuple[str, int, str]], no_fit: list[str]) -> None:
        super().__init__()
        self.rows = rows
        self.no_fit = no_fit


class BuildsListed(Message, bubble=False):
    """The newest build rows (``core.build.jobs.list_builds``)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self.rows = rows


class BuildsListFailed(Message, bubble=False):
    """Listing the builds failed (already notified); the next tick may try again."""


class BuildStarted(Message, bubble=False):
    """A build was queued and its worker process spawned."""

    def __init__(self, build_id: int, command: str) -> None:
        super().__init__()
        self.build_id = build_id
        self.command = command


class BuildCancelled(Message, bubble=False):
    """A build was cancelled; ``row`` is its final state."""

    def __init__(self, row: dict[str, Any]) -> None:
        super().__init__()
        self.row = row


class ReleaseLoaded(Message, bubble=False):
    """A release, loaded and verified from the store."""

    def __init__(self, release: Release) -> None:
        super().__init__()
        self.release = release


class ReleaseTargetsRead(Message, bubble=False):
    """Which configured CVMFS targets hold a release (``core.site.cvmfs.status.release_in_targets``)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self.rows = rows


class TreeEntriesRead(Message, bubble=False):
    """The entries of the directory behind a file-tree node that was just expanded."""

    def __init__(self, node: TreeNode, entries: list[Any]) -> None:
        super().__init__()
        self.node = node
        self.entries = entries


class DiffLoaded(Message, bubble=False):
    """The comparison of two releases."""

    def __init__(self, diff: ReleaseDiff) -> None:
        super().__init__()
        self.diff = diff


# -- a fleet check (its ``@work`` coroutine) ------------------------------------------------------
class NodeStarted(Message, bubble=False):
    """The probe of ``node`` has started."""

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node


class NodeChecked(Message, bubble=False):
    """A node is done (again, later, when it is flagged ``fingerprint-mismatch``)."""

    def __init__(self, check: NodeCheck) -> None:
        super().__init__()
        self.check = check


class FleetCheckFinished(Message, bubble=False):
    """The check ended (every node answered, or it was cancelled); posted after the last
    ``NodeChecked``, so the screen has shown every result when it handles this."""

    def __init__(self, interrupted: bool, options: CheckOptions | None) -> None:
        super().__init__()
        self.interrupted = interrupted
        self.options = options


# -- PagedTable ---------------------------------------------------------------------------------
class RowsFetched(Message, bubble=False):
    """A background reload's window of rows (``rows`` None: the query failed), for request
    ``generation`` of the table; older generations are dropped."""

    def __init__(
        self,
        generation: int,
        rows: list[Any] | None,
        start: int = 0,
        cursor: int = 0,
        ended: bool = False,
        total: int | None = None,
    ) -> None:
        super().__init__()
        self.generation = generation
        self.rows = rows
        self.start = start
        self.cursor = cursor
        self.ended = ended
        self.total = total


class TableReloaded(Message):
    """A PagedTable shows the rows of its newest background reload (bubbles to its screen)."""

    def __init__(self, table: DataTable) -> None:
        super().__init__()
        self.table = table

    @property
    def control(self) -> DataTable:
        return self.table
