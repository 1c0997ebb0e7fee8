"""Running the application under uvicorn (the only module that imports it)."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI


def serve(app: FastAPI, host: str, port: int, log_level: str) -> None:
    # access_log off: uvicorn's access log prints URLs, whose queries may hold personal data;
    # the door logs the interaction and status instead (RO-1.4).
    uvicorn.run(
        app, host=host, port=port, log_level=log_level, access_log=False, server_header=False
    )
