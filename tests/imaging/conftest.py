"""Fixtures of the imaging ingest tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fhir_server.bootstrap import Application
from fhir_server.imaging.service import ImagingService
from tests.conftest import running_application
from tests.imaging.test_service import _started


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Application, ImagingService]]:
    """A running application and its started ingest (quiet 0.05 s, max delay 0.5 s)."""
    async with running_application(tmp_path / "data") as app:
        imaging = await _started(app, quiet=0.05, max_delay=0.5)
        try:
            yield app, imaging
        finally:
            await imaging.stop()
