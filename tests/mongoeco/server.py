"""Start a mongoeco wire-protocol server on 127.0.0.1 and print its URI (run by Python >= 3.13).

Used by tests/mongoeco/fixture.py from the environment that ``make mongoeco`` builds; not
imported by the test suite itself (mongoeco needs Python 3.13, the project runs on 3.11). The
server keeps its data in memory, or in a SQLite file with ``--sqlite PATH``, and stops when its
standard input closes (so it never outlives the test run that started it) or on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys


def behave_as_standalone() -> None:
    """Refuse transactions the way a standalone mongod does (IllegalOperation, code 20), so the
    tests can see the store refuse such a server; mongoeco itself always offers transactions."""
    from typing import Any

    from mongoeco.errors import OperationFailure
    from mongoeco.wire.sessions import WireSessionStore

    def refuse(session: Any, body: dict[str, Any]) -> None:
        if body.get("startTransaction") is True or body.get("txnNumber") is not None:
            raise OperationFailure(
                "Transaction numbers are only allowed on a replica set member or mongos",
                code=20,
            )

    WireSessionStore._apply_transaction_metadata = staticmethod(refuse)  # type: ignore[method-assign]


async def serve(sqlite: str | None) -> None:
    from mongoeco.engines import MemoryEngine, SQLiteEngine
    from mongoeco.wire import AsyncMongoEcoProxyServer

    engine = SQLiteEngine(sqlite) if sqlite else MemoryEngine()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.read(1) else None)
    async with AsyncMongoEcoProxyServer(engine=engine, host="127.0.0.1", port=0) as server:
        print(server.address.uri, flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sqlite", help="keep the data in this SQLite file (default: memory)")
    parser.add_argument(
        "--standalone", action="store_true", help="refuse transactions like a standalone mongod"
    )
    args = parser.parse_args()
    if args.standalone:
        behave_as_standalone()
    asyncio.run(serve(args.sqlite))


if __name__ == "__main__":
    main()
