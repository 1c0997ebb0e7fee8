"""WADO-RS transcoding between native transfer syntaxes (PS3.18 8.7.3.5.2: a client may ask for
an instance in a transfer syntax other than the stored one).

An instance stored in Implicit or Explicit VR Little Endian, or Deflated Explicit VR Little
Endian, is served in Implicit or Explicit VR Little Endian on request: its data set re-encoded by
pydicom, every value unchanged (the pixel data's bytes included: no pixel decoding is involved).
Big Endian (retired; pydicom will not convert its words) and encapsulated (compressed) syntaxes,
which would need a codec, are served only as stored: any other syntax asked for is 406. Without
a ``transfer-syntax`` parameter, or with the stored one, the stored bytes are served unchanged.
"""

from __future__ import annotations

from io import BytesIO
from typing import Final

import pydicom
from pydicom.uid import UID

IMPLICIT_LE: Final = "1.2.840.10008.1.2"
EXPLICIT_LE: Final = "1.2.840.10008.1.2.1"
DEFLATED_LE: Final = "1.2.840.10008.1.2.1.99"
#: What can be re-encoded, and into what (in the order a retrieval proposes them).
SOURCES: Final = frozenset({IMPLICIT_LE, EXPLICIT_LE, DEFLATED_LE})
TARGETS: Final = (EXPLICIT_LE, IMPLICIT_LE)


def possible(stored: str, target: str) -> bool:
    """Whether an instance stored in ``stored`` can be served in ``target``."""
    return stored == target or (stored in SOURCES and target in TARGETS)


def transcode(part10: bytes, target: str) -> bytes:
    """The Part-10 file ``part10`` in transfer syntax ``target`` (the same bytes if it is the
    stored one). ValueError when it cannot be (see :func:`possible`)."""
    ds = pydicom.dcmread(BytesIO(part10))
    stored = str(ds.file_meta.get("TransferSyntaxUID", ""))
    if stored == target:
        return part10
    if not possible(stored, target):
        raise ValueError(f"an instance in transfer syntax {stored} cannot be served in {target}")
    ds.file_meta.TransferSyntaxUID = UID(target)
    out = BytesIO()
    ds.save_as(out, implicit_vr=target == IMPLICIT_LE, little_endian=True, enforce_file_format=True)
    return out.getvalue()
