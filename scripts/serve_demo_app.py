"""Serve the demo SMART app (tests/smart_clients/app with client-js's browser bundle) on
http://127.0.0.1:8000, the origin of the ``demo-app`` client that ``make run`` registers.

Open, after ``make run``:
http://127.0.0.1:8000/launch.html?client_id=demo-app&fhir_server=http://127.0.0.1:8080/fhir&scope=launch/patient%20openid%20fhirUser%20offline_access%20patient/*.rs
"""

from __future__ import annotations

import contextlib
import sys
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "tests" / "smart_clients"
APP = ROOT / "app"
BUNDLE = ROOT / "node_modules" / "fhirclient" / "build" / "fhir-client.js"
PORT = 8000


class Handler(SimpleHTTPRequestHandler):
    def translate_path(self, path: str) -> str:
        if path.split("?", 1)[0] == "/fhir-client.js":
            return str(BUNDLE)
        return super().translate_path(path)


def main() -> int:
    if not BUNDLE.exists():
        print("client-js is not installed: run `make smart-clients` (needs npm)", file=sys.stderr)
        return 1
    server = ThreadingHTTPServer(("127.0.0.1", PORT), partial(Handler, directory=str(APP)))
    print(
        f"demo SMART app on http://127.0.0.1:{PORT}/ — open\n"
        f"http://127.0.0.1:{PORT}/launch.html?client_id=demo-app"
        "&fhir_server=http://127.0.0.1:8080/fhir"
        "&scope=launch/patient%20openid%20fhirUser%20offline_access%20patient/*.rs",
        file=sys.stderr,
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
