"""``python -m console``: the same entry point as the ``console`` script (``console.cli:main``)."""

from __future__ import annotations

from console.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
