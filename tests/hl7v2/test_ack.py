"""ACK construction (fhir_server/hl7v2/ack.py): original and enhanced mode, ERR shapes by version,
escaping; and over the wire, the MSH-15 accept-ACK conditions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fhir_server.bootstrap import Application
from fhir_server.hl7v2.ack import Header, HeaderError, ack_code, ack_wanted, build_ack, escape
from fhir_server.hl7v2.listener import read_header
from tests.hl7v2.conftest import all_segments, connect, exchange, framed, order, segments


def clock() -> datetime:
    return datetime(2026, 3, 14, 9, 30, 12, tzinfo=UTC)


def header_of(message: str) -> Header:
    header, errors = read_header(message)
    assert errors == []
    return header


def test_aa_swaps_sender_and_receiver_and_echoes_msh10() -> None:
    ack = build_ack(header_of(order("CTRL-1")), [], ack_id="A-1", clock=clock)
    msh, msa = segments(ack)["MSH"], segments(ack)["MSA"]
    assert msh[3:7] == ["FHIRSERVER", "TELE", "RIS", "CITYHOSP"]
    assert msh[7] == "20260314093012"
    assert msh[9:13] == ["ACK^O01^ACK", "A-1", "P", "2.5.1"]
    assert msa[1:3] == ["AA", "CTRL-1"]
    assert "ERR" not in segments(ack)


def test_ae_v25_err_names_location_code_severity_and_text() -> None:
    error = HeaderError("PID", 3, "101", "PID-3 (patient identifier list) is required",
                        reject=False)  # fmt: skip
    ack = build_ack(header_of(order("C2")), [error], ack_id="A-2", clock=clock)
    assert segments(ack)["MSA"][1:4] == ["AE", "C2", "PID-3 (patient identifier list) is required"]
    err = segments(ack)["ERR"]
    assert err[1] == ""  # ERR-1 is the v2.3.1 shape only
    assert err[2] == "PID^1^3"  # ERR-2 ErrorLocation: segment^sequence^field
    assert err[3] == "101^Required field missing^HL70357"
    assert err[4] == "E"
    assert err[7] == err[8] == "PID-3 (patient identifier list) is required"


def test_v231_err_is_err1_segment_sequence_field_and_coded_error() -> None:
    error = HeaderError("OBR", 4, "101", "OBR-4 is required", sequence=2, reject=False)
    ack = build_ack(header_of(order("C3", version="2.3.1")), [error], ack_id="A", clock=clock)
    assert segments(ack)["MSA"][1] == "AE"
    assert segments(ack)["ERR"][1:] == ["OBR^2^4^101&Required field missing&HL70357"]


def test_reject_gives_ar_and_several_errors_give_several_err_segments() -> None:
    errors = [
        HeaderError("MSH", 12, "203", "version 9.9 is not supported"),
        HeaderError("PID", 7, "102", "PID-7 is not a date", reject=False),
    ]
    ack = build_ack(header_of(order("C4")), errors, ack_id="A", clock=clock)
    assert segments(ack)["MSA"][1] == "AR"
    assert [e[3].split("^")[0] for e in all_segments(ack, "ERR")] == ["203", "102"]


def test_error_text_is_escaped_with_the_message_delimiters() -> None:
    text = "bad value a|b^c&d~e\\f in PID-5"
    ack = build_ack(header_of(order("C5")), [HeaderError("PID", 5, "102", text)], ack_id="A",
                    clock=clock)  # fmt: skip
    assert segments(ack)["MSA"][3] == "bad value a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f in PID-5"
    assert escape("x\ry") == "x y"


@pytest.mark.parametrize(
    ("accept", "errors", "code", "sent"),
    [
        ("AL", False, "CA", True), ("AL", True, "CR", True), ("NE", False, "CA", False),
        ("NE", True, "CR", False), ("ER", False, "CA", False), ("ER", True, "CR", True),
        ("SU", False, "CA", True), ("SU", True, "CR", False), ("", False, "CA", True),
    ],
)  # fmt: skip
def test_enhanced_mode_codes_and_msh15_conditions(
    accept: str, errors: bool, code: str, sent: bool
) -> None:
    header = header_of(order("E1", ack_modes=(accept, "AL")))
    found = [HeaderError("MSH", 9, "200", "unsupported")] if errors else []
    assert ack_code(header, found) == code
    assert ack_wanted(header, code) is sent


@pytest.mark.asyncio(loop_scope="module")
async def test_enhanced_mode_over_the_wire_ca_and_ne_sends_nothing(
    hl7_app: Application, mllp_port: int
) -> None:
    (ack,) = await exchange(mllp_port, order("ENH-1", ack_modes=("AL", "NE")))
    assert segments(ack)["MSA"][1:3] == ["CA", "ENH-1"]
    async with connect(mllp_port) as peer:  # NE: no accept ACK; the next message's ACK comes
        await peer.send(framed(order("ENH-2", ack_modes=("NE", "NE"))))
        await peer.send(framed(order("ENH-3")))
        assert segments(await peer.ack())["MSA"][1:3] == ["AA", "ENH-3"]
    assert hl7_app.messages is not None
    stored = await hl7_app.messages.search(control_id="ENH-2")
    assert [m["state"] for m in stored] == ["received"]  # stored even though no ACK was asked
