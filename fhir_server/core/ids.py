"""Logical ids: server-assigned ids and the FHIR id grammar."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

IdFactory = Callable[[], str]

# http://hl7.org/fhir/R4/datatypes.html#id
ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def new_id() -> str:
    """A random UUID: unguessable, so ids leak nothing about volumes or order."""
    return str(uuid.uuid4())


def is_valid_id(value: str) -> bool:
    return ID_PATTERN.fullmatch(value) is not None
