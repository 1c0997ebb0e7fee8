"""The one reader of DICOMweb Accept headers (MediaType.ranges): ranges by quality, ties in the
order written, ``q=0`` (not acceptable) left out, the default when there is no header."""

from __future__ import annotations

from fhir_server.imaging.stow import MediaType
from fhir_server.imaging.wado import negotiate


def test_ranges_by_quality_ties_in_order_and_q0_left_out() -> None:
    found = MediaType.ranges('image/png;q=0.5, image/gif, multipart/related; type="image/jpeg", '
                             "image/jpeg;q=0")  # fmt: skip
    assert [(m.type, m.params.get("type")) for m in found] == [
        ("image/gif", None), ("multipart/related", "image/jpeg"), ("image/png", None)
    ]  # fmt: skip
    assert [m.type for m in MediaType.ranges(None, default="image/jpeg")] == ["image/jpeg"]
    assert [m.type for m in MediaType.ranges("text/html;q=nonsense")] == ["text/html"]


def test_wado_negotiation_skips_a_refused_range() -> None:
    parts = 'multipart/related; type="application/dicom"'
    accept = f"{parts}; transfer-syntax=1.2.840.10008.1.2; q=0, {parts}"
    assert negotiate(accept, "application/dicom", ["1.2.840.10008.1.2.1"]) == (
        "multipart/related", None
    )  # fmt: skip
