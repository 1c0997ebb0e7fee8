"""The Upper Layer PDUs and DIMSE command sets of the node's acceptor, checked against
pynetdicom's own PDU classes (an independent PS3.8 implementation)."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ, P_DATA_TF
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
)
from pynetdicom.presentation import build_context

from fhir_server.dicom.ul import dimse, pdu

CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"


def associate_rq(role: bool = False) -> bytes:
    primitive = A_ASSOCIATE()
    primitive.application_context_name = pdu.APPLICATION_CONTEXT
    primitive.calling_ae_title = "MODALITY"
    primitive.called_ae_title = "FHIRSERVER"
    contexts = [build_context(CT, [EXPLICIT, IMPLICIT]), build_context("1.2.840.10008.1.1")]
    for number, context in enumerate(contexts):
        context.context_id = 2 * number + 1
    primitive.presentation_context_definition_list = contexts
    length = MaximumLengthNotification()
    length.maximum_length_received = 16384
    implementation = ImplementationClassUIDNotification()
    implementation.implementation_class_uid = "1.2.3.4"
    user: list[Any] = [length, implementation]
    if role:
        selection = SCP_SCU_RoleSelectionNegotiation()
        selection.sop_class_uid = CT
        selection.scu_role = False
        selection.scp_role = True
        user.append(selection)
    primitive.user_information = user
    rq = A_ASSOCIATE_RQ()
    rq.from_primitive(primitive)
    return bytes(rq.encode())


def test_ro23_associate_rq_from_pynetdicom_is_read() -> None:
    raw = associate_rq(role=True)
    assert raw[0] == pdu.ASSOCIATE_RQ and struct.unpack(">I", raw[2:6])[0] == len(raw) - 6
    rq = pdu.decode_associate_rq(raw[6:])
    assert (rq.calling_ae, rq.called_ae, rq.protocol_version) == ("MODALITY", "FHIRSERVER", 1)
    assert rq.application_context == pdu.APPLICATION_CONTEXT
    assert [(c.id, c.abstract_syntax) for c in rq.contexts] == [(1, CT), (3, "1.2.840.10008.1.1")]
    assert rq.contexts[0].transfer_syntaxes == [EXPLICIT, IMPLICIT]
    assert rq.max_length == 16384 and rq.implementation_class == "1.2.3.4"
    assert [(r.sop_class, r.scu, r.scp) for r in rq.roles] == [(CT, False, True)]


def test_ro23_associate_ac_is_read_by_pynetdicom() -> None:
    rq = pdu.decode_associate_rq(associate_rq()[6:])
    results = [(1, pdu.ACCEPTANCE, IMPLICIT), (3, pdu.ABSTRACT_SYNTAX_NOT_SUPPORTED, IMPLICIT)]
    raw = pdu.encode_associate_ac(rq, results, 1 << 20, "2.25.1", "TEST_1")
    ac = A_ASSOCIATE_AC()
    ac.decode(raw)
    assert ac.calling_ae_title == "MODALITY" and ac.called_ae_title == "FHIRSERVER"
    assert ac.application_context_name == pdu.APPLICATION_CONTEXT
    contexts = {c.context_id: (c.result, c.transfer_syntax) for c in ac.presentation_context}
    assert contexts[1] == (0, IMPLICIT) and contexts[3][0] == 3
    primitive = ac.to_primitive()
    length = [i for i in primitive.user_information if isinstance(i, MaximumLengthNotification)]
    assert length[0].maximum_length_received == 1 << 20


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\x00\x01" + bytes(40), "shorter than its fixed part"),
        (b"\x00\x01" + bytes(66) + b"\x10\x00\x00\x30abc", "overruns its container"),
        (b"\x00\x01" + bytes(66) + b"\x20\x00", "truncated item header"),
        (b"\x00\x01" + bytes(66), "no Application Context"),
    ],
)
def test_ro23_malformed_associate_rq_says_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(pdu.PduError, match=message):
        pdu.decode_associate_rq(body)


def test_ro23_p_data_is_fragmented_to_the_peers_maximum_and_read_back() -> None:
    data = bytes(range(256)) * 40  # 10240 bytes
    raw = pdu.encode_p_data(5, data, command=False, max_length=4096)
    fragments, pos = [], 0
    while pos < len(raw):
        kind, length = struct.unpack_from(">BxI", raw, pos)
        assert kind == pdu.P_DATA_TF and length <= 4096
        body = raw[pos + 6 : pos + 6 + length]
        theirs = P_DATA_TF()
        theirs.decode(raw[pos : pos + 6 + length])
        assert theirs.presentation_data_value_items[0].presentation_context_id == 5
        fragments += list(pdu.decode_p_data(body))
        pos += 6 + length
    assert [control for _, control, _ in fragments] == [0, 0, 2]
    assert b"".join(bytes(f) for _, _, f in fragments) == data


def test_ro23_bad_pdv_length_is_an_error() -> None:
    with pytest.raises(pdu.PduError, match="PDV length"):
        list(pdu.decode_p_data(struct.pack(">IBB", 100, 1, 3) + b"xx"))


def test_ro23_command_set_round_trip_and_group_length() -> None:
    raw = dimse.encode_command({
        dimse.AFFECTED_SOP_CLASS: CT, dimse.COMMAND_FIELD: dimse.C_STORE_RSP,
        dimse.MESSAGE_ID_RESPONDED: 7, dimse.DATA_SET_TYPE: dimse.NO_DATA_SET,
        dimse.STATUS: 0xA700, dimse.ERROR_COMMENT: "odd",
    })  # fmt: skip
    elements = dimse.decode_command(raw)
    assert struct.unpack("<I", elements[0x0000])[0] == len(raw) - 12
    assert dimse.text(elements, dimse.AFFECTED_SOP_CLASS) == CT
    assert elements[dimse.AFFECTED_SOP_CLASS].endswith(b"\x00")  # UI padded with NULL
    assert elements[dimse.ERROR_COMMENT] == b"odd "  # LO padded with a space
    assert dimse.us(elements, dimse.STATUS) == 0xA700
    assert dimse.us(elements, dimse.MESSAGE_ID_RESPONDED) == 7


def test_ro23_command_outside_group_0000_is_an_error() -> None:
    raw = struct.pack("<HHI", 0x0008, 0x0016, 2) + b"1\x00"
    with pytest.raises(pdu.PduError, match=r"\(0008,0016\) is not group 0000"):
        dimse.decode_command(raw)
