"""Transfer syntaxes by fidelity (PS3.5 section 8 and Annex A, PS3.6 Table A-1).

pydicom has no "is lossless" property, so the RO-14 gate keeps this explicit table. A syntax that
is not listed is UNKNOWN: the gate neither rejects nor flags it for that reason alone.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache


class Fidelity(StrEnum):
    """What a transfer syntax says about the pixel data it carries."""

    LOSSLESS = "lossless"
    LOSSY = "lossy"  # always lossy (JPEG baseline/extended, JPEG-LS near-lossless, video)
    POSSIBLY_LOSSY = "possibly-lossy"  # reversible or irreversible: trust (0028,2110)
    NO_PIXELS = "no-pixels"  # JPIP referenced: pixel data elsewhere
    UNKNOWN = "unknown"


@cache  # the same table every time: built once, on first use
def _table() -> dict[str, tuple[Fidelity, str]]:
    lossless = Fidelity.LOSSLESS
    lossy = Fidelity.LOSSY
    maybe = Fidelity.POSSIBLY_LOSSY
    none = Fidelity.NO_PIXELS
    return {
        "1.2.840.10008.1.2": (lossless, "Implicit VR Little Endian"),
        "1.2.840.10008.1.2.1": (lossless, "Explicit VR Little Endian"),
        "1.2.840.10008.1.2.1.98": (lossless, "Encapsulated Uncompressed Explicit VR Little Endian"),
        "1.2.840.10008.1.2.1.99": (lossless, "Deflated Explicit VR Little Endian"),
        "1.2.840.10008.1.2.2": (lossless, "Explicit VR Big Endian"),
        "1.2.840.10008.1.2.5": (lossless, "RLE Lossless"),
        "1.2.840.10008.1.2.4.50": (lossy, "JPEG Baseline (Process 1)"),
        "1.2.840.10008.1.2.4.51": (lossy, "JPEG Extended (Process 2 & 4)"),
        "1.2.840.10008.1.2.4.57": (lossless, "JPEG Lossless, Non-Hierarchical (Process 14)"),
        "1.2.840.10008.1.2.4.70": (lossless, "JPEG Lossless, First-Order Prediction (SV1)"),
        "1.2.840.10008.1.2.4.80": (lossless, "JPEG-LS Lossless"),
        "1.2.840.10008.1.2.4.81": (lossy, "JPEG-LS Lossy (Near-Lossless)"),
        "1.2.840.10008.1.2.4.90": (lossless, "JPEG 2000 (Lossless Only)"),
        "1.2.840.10008.1.2.4.91": (maybe, "JPEG 2000"),
        "1.2.840.10008.1.2.4.92": (lossless, "JPEG 2000 Part 2 Multi-component (Lossless Only)"),
        "1.2.840.10008.1.2.4.93": (maybe, "JPEG 2000 Part 2 Multi-component"),
        "1.2.840.10008.1.2.4.94": (none, "JPIP Referenced"),
        "1.2.840.10008.1.2.4.95": (none, "JPIP Referenced Deflate"),
        "1.2.840.10008.1.2.4.100": (lossy, "MPEG2 Main Profile / Main Level"),
        "1.2.840.10008.1.2.4.100.1": (lossy, "Fragmentable MPEG2 Main Profile / Main Level"),
        "1.2.840.10008.1.2.4.101": (lossy, "MPEG2 Main Profile / High Level"),
        "1.2.840.10008.1.2.4.101.1": (lossy, "Fragmentable MPEG2 Main Profile / High Level"),
        "1.2.840.10008.1.2.4.102": (lossy, "MPEG-4 AVC/H.264 High Profile / Level 4.1"),
        "1.2.840.10008.1.2.4.102.1": (lossy, "Fragmentable MPEG-4 AVC/H.264 High Profile 4.1"),
        "1.2.840.10008.1.2.4.103": (lossy, "MPEG-4 AVC/H.264 BD-compatible High Profile"),
        "1.2.840.10008.1.2.4.103.1": (lossy, "Fragmentable MPEG-4 AVC/H.264 BD-compatible"),
        "1.2.840.10008.1.2.4.104": (lossy, "MPEG-4 AVC/H.264 High Profile For 2D Video"),
        "1.2.840.10008.1.2.4.104.1": (lossy, "Fragmentable MPEG-4 AVC/H.264 For 2D Video"),
        "1.2.840.10008.1.2.4.105": (lossy, "MPEG-4 AVC/H.264 High Profile For 3D Video"),
        "1.2.840.10008.1.2.4.105.1": (lossy, "Fragmentable MPEG-4 AVC/H.264 For 3D Video"),
        "1.2.840.10008.1.2.4.106": (lossy, "MPEG-4 AVC/H.264 Stereo High Profile"),
        "1.2.840.10008.1.2.4.106.1": (lossy, "Fragmentable MPEG-4 AVC/H.264 Stereo High"),
        "1.2.840.10008.1.2.4.107": (lossy, "HEVC/H.265 Main Profile / Level 5.1"),
        "1.2.840.10008.1.2.4.108": (lossy, "HEVC/H.265 Main 10 Profile / Level 5.1"),
        "1.2.840.10008.1.2.4.110": (lossless, "JPEG XL Lossless"),
        "1.2.840.10008.1.2.4.111": (lossy, "JPEG XL JPEG Recompression"),
        "1.2.840.10008.1.2.4.112": (maybe, "JPEG XL"),
        "1.2.840.10008.1.2.4.201": (lossless, "High-Throughput JPEG 2000 (Lossless Only)"),
        "1.2.840.10008.1.2.4.202": (lossless, "High-Throughput JPEG 2000 with RPCL (Lossless)"),
        "1.2.840.10008.1.2.4.203": (maybe, "High-Throughput JPEG 2000"),
        "1.2.840.10008.1.2.4.204": (none, "JPIP HTJ2K Referenced"),
        "1.2.840.10008.1.2.4.205": (none, "JPIP HTJ2K Referenced Deflate"),
    }


def fidelity(transfer_syntax: str) -> Fidelity:
    """The fidelity of a transfer syntax UID; UNKNOWN when it is not in the table."""
    entry = _table().get(transfer_syntax.strip().rstrip("\x00"))
    return entry[0] if entry else Fidelity.UNKNOWN


def name(transfer_syntax: str) -> str:
    """The PS3.6 name of a transfer syntax UID, or the UID itself when unknown."""
    uid = transfer_syntax.strip().rstrip("\x00")
    entry = _table().get(uid)
    return entry[1] if entry else uid
