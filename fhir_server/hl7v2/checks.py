"""The fast checks a message passes before it is acknowledged (plain string work, no mapping).

:func:`check` returns every problem found, each a :class:`V2Error` naming segment, field and
reason; an empty list means the message can be accepted (AA/CA) and mapped later by the worker.
What is checked:

* MSH: MSH-9 is ORM^O01 (v2.3, 2.3.1, 2.4, 2.5, 2.5.1, 2.6) or OMI^O23 (v2.5.1 and later);
  anything else is rejected (AR) with 200/201/203; MSH-10 must be present (AR, 101);
* PID present with PID-3 (101); ORC present with ORC-1 a known order control code (101/103);
  each order has a placer order number (ORC-2 or OBR-2); a new order (NW) has OBR-4; an SC
  carries a known ORC-5 order status (0038);
* every date/time the mapping reads parses (MSH-7, PID-7, PV1-44, ORC-9, ORC-7.4, OBR-6, OBR-7,
  OBR-27.4, TQ1-7, TQ1-8): 102 otherwise.
"""

from __future__ import annotations

from fhir_server.hl7v2.er7 import Message, Segment
from fhir_server.hl7v2.errors import (
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    TABLE_VALUE_NOT_FOUND,
    UNSUPPORTED_EVENT_CODE,
    UNSUPPORTED_MESSAGE_TYPE,
    UNSUPPORTED_VERSION_ID,
    V2Error,
)
from fhir_server.hl7v2.mapping.dates import dtm_to_fhir

# Message type → the MSH-12 versions accepted for it.
SUPPORTED: dict[str, frozenset[str]] = {
    "ORM^O01": frozenset({"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6"}),
    "OMI^O23": frozenset({"2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2", "2.9"}),
}
# ORC-1 codes the mapping handles (table 0119); mappings/v2-to-fhir/order-control.json has each.
ORDER_CONTROL = frozenset({"NW", "CA", "DC", "XO", "SC", "OC", "OD", "DR", "CR", "HD", "RL"})
# ORC-5 (table 0038).
ORDER_STATUS = frozenset({"A", "CA", "CM", "DC", "ER", "HD", "IP", "RP", "SC"})

# (segment, field, component) of the date/time values the mapping reads.
_DATES: tuple[tuple[str, int, int], ...] = (
    ("PID", 7, 1),
    ("PV1", 44, 1),
    ("ORC", 9, 1),
    ("ORC", 7, 4),
    ("OBR", 6, 1),
    ("OBR", 7, 1),
    ("OBR", 27, 4),
    ("TQ1", 7, 1),
    ("TQ1", 8, 1),
)


def check(message: Message) -> list[V2Error]:
    """Every problem that keeps ``message`` from being accepted; ``[]`` when it is fine."""
    errors = _check_header(message)
    if errors:
        return errors
    errors.extend(_check_patient(message))
    errors.extend(_check_orders(message))
    errors.extend(_check_dates(message))
    return errors


def _check_header(message: Message) -> list[V2Error]:
    msh = message.msh
    code, event = msh.get(9, 1, 1), msh.get(9, 1, 2)
    kind = f"{code}^{event}"
    errors: list[V2Error] = []
    if kind not in SUPPORTED:
        known_code = any(k.startswith(code + "^") for k in SUPPORTED) and bool(code)
        errors.append(
            V2Error(
                "MSH",
                1,
                9,
                2 if known_code else 1,
                UNSUPPORTED_EVENT_CODE if known_code else UNSUPPORTED_MESSAGE_TYPE,
                message=f"message type {kind!r} is not supported "
                f"(this server accepts {', '.join(sorted(SUPPORTED))})",
                reject=True,
            )
        )
    elif message.version not in SUPPORTED[kind]:
        errors.append(
            V2Error(
                "MSH",
                1,
                12,
                None,
                UNSUPPORTED_VERSION_ID,
                message=f"version {message.version!r} is not supported for {kind} "
                f"(supported: {', '.join(sorted(SUPPORTED[kind]))})",
                reject=True,
            )
        )
    if not msh.get(10):
        errors.append(
            V2Error(
                "MSH",
                1,
                10,
                None,
                REQUIRED_FIELD_MISSING,
                message="MSH-10 (message control id) is empty",
                reject=True,
            )
        )
    try:
        if msh.get(7, 1, 1):
            dtm_to_fhir(msh.get(7, 1, 1))
    except ValueError as exc:
        errors.append(V2Error("MSH", 1, 7, None, DATA_TYPE_ERROR, message=str(exc)))
    return errors


def _check_patient(message: Message) -> list[V2Error]:
    pid = message.segment("PID")
    if pid is None:
        return [
            V2Error(
                "PID",
                1,
                None,
                None,
                SEGMENT_SEQUENCE_ERROR,
                message="the message has no PID segment (the patient)",
            )
        ]
    if not any(rep.split(pid.encoding.component, 1)[0] for rep in pid.repetitions(3)):
        return [
            V2Error(
                "PID",
                1,
                3,
                1,
                REQUIRED_FIELD_MISSING,
                message="PID-3 (patient identifier list) has no identifier",
            )
        ]
    return []


def _check_orders(message: Message) -> list[V2Error]:
    orcs = message.all("ORC")
    if not orcs:
        return [
            V2Error(
                "ORC",
                1,
                None,
                None,
                SEGMENT_SEQUENCE_ERROR,
                message="the message has no ORC segment (common order)",
            )
        ]
    obrs = message.all("OBR")
    errors: list[V2Error] = []
    for n, orc in enumerate(orcs, start=1):
        obr = obrs[n - 1] if n <= len(obrs) else None
        errors.extend(_check_order(n, orc, obr))
    return errors


def _check_order(n: int, orc: Segment, obr: Segment | None) -> list[V2Error]:
    control = orc.get(1)
    if not control:
        return [V2Error("ORC", n, 1, None, REQUIRED_FIELD_MISSING, message="ORC-1 is empty")]
    if control not in ORDER_CONTROL:
        return [
            V2Error(
                "ORC",
                n,
                1,
                None,
                TABLE_VALUE_NOT_FOUND,
                message=f"order control code {control!r} is not handled "
                f"(accepted: {', '.join(sorted(ORDER_CONTROL))})",
            )
        ]
    errors: list[V2Error] = []
    if not orc.get(2, 1, 1) and (obr is None or not obr.get(2, 1, 1)):
        errors.append(
            V2Error(
                "ORC",
                n,
                2,
                1,
                REQUIRED_FIELD_MISSING,
                message="no placer order number (ORC-2 or OBR-2): the order cannot be identified",
            )
        )
    if control == "NW" and (obr is None or not obr.get(4, 1, 1)):
        where = "OBR-4 is empty" if obr is not None else "the new order has no OBR segment"
        errors.append(
            V2Error(
                "OBR",
                n,
                4 if obr is not None else None,
                None,
                REQUIRED_FIELD_MISSING if obr is not None else SEGMENT_SEQUENCE_ERROR,
                message=f"{where} (universal service identifier: what is ordered)",
            )
        )
    status = orc.get(5)
    if control == "SC" and not status:
        errors.append(
            V2Error(
                "ORC",
                n,
                5,
                None,
                REQUIRED_FIELD_MISSING,
                message="a status change (ORC-1 SC) needs ORC-5 (order status)",
            )
        )
    elif status and status not in ORDER_STATUS:
        errors.append(
            V2Error(
                "ORC",
                n,
                5,
                None,
                TABLE_VALUE_NOT_FOUND,
                message=f"order status {status!r} is not in HL7 table 0038",
            )
        )
    return errors


def _check_dates(message: Message) -> list[V2Error]:
    errors: list[V2Error] = []
    for name, field, component in _DATES:
        for n, segment in enumerate(message.all(name), start=1):
            value = segment.get(field, 1, component)
            if not value:
                continue
            try:
                dtm_to_fhir(value)
            except ValueError as exc:
                errors.append(
                    V2Error(
                        name,
                        n,
                        field,
                        component if component > 1 else None,
                        DATA_TYPE_ERROR,
                        message=f"{name}-{field}: {exc}",
                    )
                )
    return errors
