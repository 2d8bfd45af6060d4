"""One release: metadata, images (files, size, CPU target), packages from the lock file, and a
lazy file tree per image (a directory's entries are read from the store only when it is opened,
so a 100k-file image costs one tree object per expanded directory). With CVMFS targets configured
the metadata says which of them hold the release (read in a worker: a repository may be a slow
FUSE mount)."""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

import console.tui.actions as actions
from console.render import ago, inert, published_in, short, size
from console.tui.lookups import current_channels
from console.tui.messages import ReleaseLoaded, ReleaseTargetsRead, TreeEntriesRead
from console.tui.promote import start_promote
from console.tui.screens.base import BaseScreen
from console.tui.widgets.cells import InertTable, cell
from console.tui.widgets.columns import Col
from console.tui.widgets.footer import ConsoleFooter
from console.tui.widgets.header import SiteHeader
from core.model.manifest import Release
from core.site.catalogue import load_release
from core.store.trees import TreeReader

MAX_CHILDREN = 2000  # entries shown per directory; the rest are summarised in one line
IMAGE_COLUMNS = [
    Col("IMAGE", 6, priority=0, flex=1),
    Col("FILES", 5, priority=2),
    Col("SIZE", 6, priority=1),
    Col("CPU TARGET", 6, priority=1, flex=1),
    Col("ROOT", 12, priority=3, max=12),
]
PACKAGE_COLUMNS = [
    Col("PACKAGE", 8, priority=0, flex=1),
    Col("VERSION", 6, priority=0),
    Col("UUID", 8, priority=1, max=8),
]


def _targets_holding(release_id: str) -> Callable[[Any], list[dict[str, Any]]]:
    def read(site: Any) -> list[dict[str, Any]]:
        from core.site.cvmfs import status

        return status.release_in_targets(site, release_id)

    return read


class ReleaseScreen(BaseScreen):
    SCREEN_ID = "release"
    BINDINGS = actions.bindings_for("release")

    def __init__(self, release_id: str) -> None:
        super().__init__()
        self.release_id = release_id
        self.release: Release | None = None
        self._reader: TreeReader | None = None
        self._reader_lock = threading.Lock()
        self._meta: list[tuple[str, str]] = []

    def headless_context(self) -> dict[str, object]:
        parent = self.release.parent if self.release else None
        return {"release": short(self.release_id), "a": short(parent) if parent else None, "b": short(self.release_id)}

    def compose(self) -> ComposeResult:
        yield SiteHeader(f"Release {short(self.release_id)}")
        with Horizontal(id="release-top"):
            yield Static("loading…", id="meta", classes="panel")
            with Vertical(id="release-images"):
                yield InertTable(id="images", cursor_type="row")
                yield InertTable(id="packages", cursor_type="row", zebra_stripes=True)
        yield Tree("files", id="files")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        images = self.query_one("#images", InertTable)
        images.set_columns(IMAGE_COLUMNS)
        images.border_title = "images"
        pk = self.query_one("#packages", InertTable)
        pk.set_columns(PACKAGE_COLUMNS)
        pk.border_title = "packages (lock file)"
        tree = self.query_one("#files", Tree)
        tree.border_title = "files (enter opens a directory)"
        tree.show_root = False
        self.work(
            lambda s: load_release(s, self.release_id), ReleaseLoaded, name="load-release", title="cannot open release"
        )

    @on(ReleaseLoaded)
    def _loaded(self, event: ReleaseLoaded) -> None:
        rel = self.release = event.release
        site = self.site
        now = site.now()
        channels = [ch for ch, (rid, _) in current_channels(site).items() if rid == rel.id]
        self._meta = [
            ("id", rel.id[:40] + "…"),
            ("name", rel.name),
            ("label", rel.label or "-"),
            ("created", f"{rel.created} ({ago(rel.created, now)})"),
            ("parent", short(rel.parent)),
            ("builder", " ".join(f"{k}={v}" for k, v in sorted(rel.builder.items()))),
            ("channels", ", ".join(channels) or "-"),
            ("signed by", ", ".join(short(k, 16) for k in rel.signed_by)),
            ("size", f"{size(rel.total_bytes)} in {rel.total_files} files"),
            ("smoke", shlex.join(rel.smoke["command"]) if rel.smoke else "-"),
        ]
        if site.config.cvmfs.targets:  # where it is published; without targets, as before
            self._meta.append(("cvmfs", "…"))
            self.work(_targets_holding(rel.id), ReleaseTargetsRead, name="release-cvmfs", title="cvmfs")
        self._show_meta()
        images = self.query_one("#images", InertTable)
        for arch, img in sorted(rel.images.items()):
            images.add_row(arch, str(img.files), size(img.bytes), img.cpu_target or "-", short(img.root), key=arch)
        pk = self.query_one("#packages", InertTable)
        for p in sorted(rel.packages, key=lambda p: p["name"].lower()):
            pk.add_row(p["name"], p.get("version", ""), p.get("uuid", "")[:8])
        tree = self.query_one("#files", Tree)
        for arch, img in sorted(rel.images.items()):
            node = tree.root.add(
                Text.assemble(cell(arch, "bold"), f"  {img.files} files, {size(img.bytes)}"),
                data={"digest": img.root, "path": "", "loaded": False},
            )
            node.allow_expand = True
        tree.root.expand()

    def _show_meta(self) -> None:
        meta = Text()
        for k, v in self._meta:
            meta.append(f"{k:>10}  ", style="dim")
            meta.append(f"{inert(v)}\n")
        self.query_one("#meta", Static).update(meta)

    @on(ReleaseTargetsRead)
    def _targets_read(self, event: ReleaseTargetsRead) -> None:
        self._meta = [(k, published_in(event.rows) if k == "cvmfs" else v) for k, v in self._meta]
        self._show_meta()

    def on_tree_node_expanded(self, event: Tree.NodeExpanded) -> None:
        node = event.node
        data = node.data
        if not data or data.get("loaded"):
            return
        data["loaded"] = True
        digest, path = data["digest"], data["path"]

        def read(site: Any) -> list:
            with self._reader_lock:
                if self._reader is None:
                    self._reader = TreeReader(site.store)
                else:
                    self._reader.store = site.store
                return self._reader.entries(digest, path)

        self.work(read, lambda entries: TreeEntriesRead(node, entries), name=f"tree-{digest}", title="cannot read tree")

    @on(TreeEntriesRead)
    def _entries_read(self, event: TreeEntriesRead) -> None:
        self._add_entries(event.node, event.entries)

    def _add_entries(self, node: TreeNode, entries: list) -> None:
        """Put a directory's entries under its tree node (at most ``MAX_CHILDREN``, then a note).

        Not ``_add_children``: that name is Textual's (``DOMNode._add_children``)."""
        for e in entries[:MAX_CHILDREN]:
            path = f"{node.data['path']}/{e.name}" if node.data["path"] else e.name
            if e.type == "dir":
                child = node.add(
                    cell(e.name + "/", "bold blue"), data={"digest": e.digest, "path": path, "loaded": False}
                )
                child.allow_expand = True
            elif e.type == "link":
                node.add_leaf(Text.assemble(cell(e.name, "cyan"), cell(f" -> {e.target}")))
            else:
                mode = " x" if e.mode & 0o111 else ""
                node.add_leaf(Text.assemble(cell(e.name), (f"  {size(e.size)}{mode}", "dim")))
        if len(entries) > MAX_CHILDREN:
            node.add_leaf(Text(f"… {len(entries) - MAX_CHILDREN} more entries", style="italic dim"))

    def action_show_compare_parent(self) -> None:
        if self.release and self.release.parent:
            from console.tui.screens.compare import CompareScreen

            self.log_command("show_compare_parent", a=short(self.release.parent), b=short(self.release.id))
            self.app.push_screen(CompareScreen(self.release.parent, self.release.id))
        else:
            self.notify("this release has no parent to compare with", severity="warning")

    def action_promote(self) -> None:
        start_promote(self, self.release_id)
