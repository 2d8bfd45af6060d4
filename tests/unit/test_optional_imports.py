"""``core.optional``: sqlite-utils loads without numpy/pandas even where they are installed (issue 17)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_sqlite_utils_is_imported_without_numpy_or_pandas(tmp_path: Path) -> None:
    for name in ("numpy", "pandas"):  # stand-ins that say when they are imported
        (tmp_path / f"{name}.py").write_text(f"import sys\nprint('{name} imported', file=sys.stderr)\n")
    code = (
        "import sys\n"
        "from core.site.db.lazydb import import_sqlite_utils\n"
        "db = import_sqlite_utils().Database(memory=True)\n"
        "db['t'].insert({'a': 1})\n"
        "print(sorted(m for m in ('numpy', 'pandas') if m in sys.modules))\n"
        "import numpy\n"  # hidden only while sqlite-utils loads
        "print('numpy' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert proc.stdout.splitlines() == ["[]", "True"]
    assert proc.stderr.splitlines() == ["numpy imported"]
