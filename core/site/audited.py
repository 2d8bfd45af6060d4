"""Publishing as a site action, the one way every face and worker publishes.

``core.site.publish.publish`` does the work and records nothing; this wrapper is where the
policy lives: refused in read-only mode, one audit row ``publish <release id>`` (``publish <name>``
when it failed before there was one) whether it succeeds, fails or is interrupted
(``Site.action``), its detail the new release, its name and what it added. The
``console publish`` verb and the build worker call it; the demo site writes its own, backdated
history rows instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.site.publish import PublishResult
    from core.site.site import Site


def publish_release(
    site: Site, name: str, images: Mapping[str, Path], *, audit: Mapping[str, Any] | None = None, **options: Any
) -> PublishResult:
    """``publish(site, name, images, **options)`` inside ``site.action("publish", name)``.

    ``audit`` adds keys to the audit detail (the build worker adds ``build``); the detail reads
    ``release``, then those keys, then ``new_objects`` and ``new_bytes``.
    """
    from core.site.publish import publish

    with site.action("publish", name) as detail:
        res = publish(site, name, dict(images), **options)
        detail.target = res.release_id  # the row names the release, as the demo's do; the name is in the detail
        detail.update(
            release=res.release_id,
            name=name,
            **dict(audit or {}),
            new_objects=res.new_objects,
            new_bytes=res.new_bytes,
        )
    return res
