"""Synthetic Julia depots: a thin shim over ``core.demo.synthdepot`` that keeps the benchmark CLI.

The generator lives in core so that an installed console can build its demo site; benchmarks and
tests keep importing ``bench.depotgen``.

CLI: ``python tests/bench/depotgen.py DIR [--scale S] [--variant V] [--seed N]`` prints the stats JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.demo.synthdepot import generate, make_plan  # noqa: E402

__all__ = ["generate", "make_plan", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate a synthetic Julia depot.")
    parser.add_argument("dir", type=Path)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--variant", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        stats = generate(args.dir, scale=args.scale, seed=args.seed, variant=args.variant)
    except (FileExistsError, ValueError) as exc:
        print(f"depotgen: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(stats, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
