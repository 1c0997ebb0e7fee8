"""``make bench`` / ``python -m bench [--n N]``: run every benchmark of the suite."""

from __future__ import annotations

import argparse
import asyncio

from bench import rest_core


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--n", type=int, default=2000, help="resources per workload")
    args = parser.parse_args()
    asyncio.run(rest_core.run(args.n))


if __name__ == "__main__":
    main()
