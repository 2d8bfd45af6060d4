"""Export an image back to a plain directory tree, identical to what was published.

Bytes, exec bits, relative symlinks and empty directories are reproduced. The tree is built in a
temporary sibling directory and renamed into place at the end, so an interrupted export leaves no
half tree at the destination.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from core.errors import BadInput
from core.model.manifest import Release
from core.site.catalogue import load_release
from core.site.site import Site
from core.store.materialize import materialize


def export_image(site: Site, release_id: str, arch: str, dest: Path) -> dict[str, Any]:
    """Export image ``arch`` of a release into ``dest`` (which must not exist or be empty)."""
    rel: Release = load_release(site, release_id)
    if arch not in rel.images:
        raise BadInput(f"release {release_id[7:19]} has no image {arch} (it has: {', '.join(sorted(rel.images))})")
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BadInput(f"{dest}: exists and is not an empty directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.export-", dir=dest.parent))
    try:
        files, total = materialize(site.store, rel.images[arch].root, tmp)
        os.chmod(tmp, 0o755)
        if dest.exists():
            dest.rmdir()
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"release": rel.id, "arch": arch, "dest": str(dest), "files": files, "bytes": total}
