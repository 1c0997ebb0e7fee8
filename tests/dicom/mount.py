"""Q's DIMSE services (C-FIND/worklist, storage commitment) on a pynetdicom AE bound to
127.0.0.1, for the tests of those services while the DIMSE node (fhir_server/dicom/node.py,
engineer I) is not in the tree yet: the same contexts and handlers the node mounts, a loop
bridge doing what fhir_server/dicom/bridge.py does (run_coroutine_threadsafe + result).

Once the node exists, the tests start it through ``running_application(dicom_port=...)`` and
this module goes away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from pynetdicom import AE, evt

from fhir_server.bootstrap import Application
from fhir_server.core.context import RequestContext
from fhir_server.dicom.commitment import CommitmentService
from fhir_server.dicom.find import FindService
from fhir_server.dicom.scu import nodelay, peer_table

T = TypeVar("T")


class Bridge:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


@contextmanager
def mounted(
    app: Application,
    port: int,
    peers: Sequence[str] = (),
    ae_title: str = "FHIRSERVER",
    extra: Sequence[Any] = (),
) -> Iterator[None]:
    """Serve the worklist, C-FIND (without the query module) and storage commitment on port."""
    table = peer_table(peers)
    bridge = Bridge(asyncio.get_running_loop())

    def organization(ae: str) -> str | None:
        return table[ae].organization if ae in table else None

    def context(ae: str) -> RequestContext:
        return RequestContext(channel="dicom", organization=organization(ae))

    services = [
        FindService(app.service, bridge, None, context),
        CommitmentService(
            app.service, app.store.records, app.blobs, bridge, ae_title=ae_title,
            context=context, organization=organization,
            peer=lambda ae: table[ae].address if ae in table else None,
        ),
        *extra,
    ]  # fmt: skip
    ae = AE(ae_title=ae_title)
    handlers: list[Any] = [(evt.EVT_CONN_OPEN, nodelay)]
    for service in services:
        for uid, syntaxes, scu_role, scp_role in service.contexts():
            roles = {"scu_role": scu_role, "scp_role": scp_role} if scu_role or scp_role else {}
            ae.add_supported_context(uid, syntaxes, **roles) if syntaxes else (
                ae.add_supported_context(uid, **roles)
            )
        handlers += service.handlers()
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers)
    try:
        yield
    finally:
        server.shutdown()
