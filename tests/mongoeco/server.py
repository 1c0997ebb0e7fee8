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
    asyncio.run(serve(parser.parse_args().sqlite))


if __name__ == "__main__":
    main()
