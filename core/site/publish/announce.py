"""Step 3 of a publish: tell the site (its catalogue cache) and the ``post_publish`` hook."""

from __future__ import annotations

from core.site.catalogue import sync_catalogue
from core.site.publish.hooks import run_hook
from core.site.publish.plan import Plan
from core.site.site import Site


def announce(site: Site, planned: Plan, env: dict[str, str]) -> None:
    """After the store holds the release and the index: the catalogue row, then ``post_publish``."""
    sync_catalogue(site, only=[planned.release_id])
    run_hook(site, "post_publish", env)
