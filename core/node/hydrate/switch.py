"""Step 5 of a hydrate: ``syncfs`` the node's file system, then switch ``current/<channel>``.

The switch is a temp symlink renamed over the old one (``NodeRoot.switch``), done only after the
image is complete and durable; the high-water mark moves after it (``record``).
"""

from __future__ import annotations

from core.durable import syncfs
from core.node.hydrate.result import HydrateProgress
from core.node.root import CurrentImage, NodeRoot


def switch(
    node: NodeRoot, channel: str, release_id: str, arch: str, before: CurrentImage | None, prog: HydrateProgress
) -> bool:
    """Make the image durable and point ``current/<channel>`` at it; whether the link moved."""
    prog.phase("switch")
    syncfs(node.root)
    if before is None or (before.release, before.arch) != (release_id, arch):
        node.switch(channel, release_id, arch)
        return True
    return False
