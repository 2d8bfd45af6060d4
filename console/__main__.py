"""``python -m console``: the same entry point as the ``console`` script (``console.launch:main``)."""

from __future__ import annotations

from console.launch import main

if __name__ == "__main__":
    raise SystemExit(main())
