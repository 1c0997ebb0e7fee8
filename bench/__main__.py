"""``make bench`` / ``python -m bench [--n N]``: run every benchmark of the suite."""

from __future__ import annotations

import argparse
import asyncio

from bench import rest_core, search


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--n", type=int, default=2000, help="resources per REST core workload")
    parser.add_argument(
        "--search-sizes",
        default="100000",
        help="comma-separated corpus sizes of the search benchmark (e.g. 100000,1000000)",
    )
    parser.add_argument("--queries", type=int, default=200, help="searches per search workload")
    parser.add_argument("--only", choices=("rest_core", "search"), help="run one benchmark")
    args = parser.parse_args()
    if args.only in (None, "rest_core"):
        asyncio.run(rest_core.run(args.n))
    if args.only in (None, "search"):
        sizes = [int(size) for size in args.search_sizes.split(",") if size.strip()]
        asyncio.run(search.run(sizes, args.queries))


if __name__ == "__main__":
    main()
