"""The index's DICOM JSON (PS3.18 F.2) of a header read from its raw elements (issue 9).

The same object :func:`fhir_server.imaging.attributes.header_json` gives for the Dataset of the
same file after the identity checks and the gate have read it: the top-level text and number
attributes in tag order, file meta and private groups left out, sequences and binary values
left out, values longer than 8 KiB left out. An element the checks have read (pydicom converts
what it reads) is given as pydicom's ``to_json_dict`` gives it — decimal strings as floats,
a person name as its Alphabetic group — and any other as the raw decoding of
:mod:`fhir_server.imaging.attributes` gives it — decimal strings without a point or exponent as
integers. What only pydicom can decode goes through the Dataset, as before.
"""

from __future__ import annotations

from fhir_server.imaging.attributes import (
    BINARY_NUMBERS,
    MAX_VALUE_BYTES,
    TEXT_VRS,
    Json,
    _element_json,
    _raw_json,
)
from fhir_server.imaging.header import KNOWN_VRS
from fhir_server.imaging.part10 import UNDEFINED
from fhir_server.imaging.raw_header import Entry, RawHeader

#: What pydicom's JSON of an empty element of these VRs is left out as (``_element_json``).
NOT_INDEXED = frozenset({"SQ", "OB", "OW", "OF", "OD", "OL", "OV", "UN", "AT"})
#: VRs whose empty value dcmread leaves as None (converted when read: pydicom's JSON).
EMPTY_AS_NONE = frozenset({"AT", "DS", "FD", "FL", "IS", "OB", "OD", "OF", "OL", "OW", "OV",
                           "SL", "SS", "SV", "UL", "UN", "US", "UV"})  # fmt: skip


#: Values already converted, by VR, bytes, character set and byte order: the instances of a
#: series repeat most of their header (patient, study, series, equipment), so most elements
#: are a look-up. The objects are shared between the instances' attributes: never mutated.
#: At most ``_CONVERTED_MAX`` values of at most ``_CONVERTED_BYTES`` bytes each are kept.
_CONVERTED: dict[tuple[str, bytes, str, bool], Json] = {}
_CONVERTED_MAX = 4096
_CONVERTED_BYTES = 1024
#: Tags as the JSON's keys.
_KEYS: dict[int, str] = {}
_KEYS_MAX = 8192


def attributes_json(raw: RawHeader) -> Json:
    """The top-level text and number attributes of ``raw`` as DICOM JSON."""
    out: Json = {}
    touched = raw.touched
    body, little, charset = raw.body, raw.little, raw.charset
    converted = _CONVERTED
    for entry in [entry for entry in raw.entries.values() if not entry[0] & 0x10000]:
        tag, written, length, offset = entry  # a public element (private groups are odd)
        if tag < 0x00030000 and tag >> 16 == 0x0002:  # file meta in the data set
            continue
        if tag in touched:
            item = _converted_json(raw, entry)
            if item is not None:
                out[_key(tag)] = item
            continue
        vr = KNOWN_VRS[written] if written else raw.vr(entry)
        if length == 0 and (not written or vr in EMPTY_AS_NONE):
            item = _empty_json(raw, entry)
        elif vr is None or length == UNDEFINED or length > MAX_VALUE_BYTES:
            continue
        elif vr in BINARY_NUMBERS or vr in TEXT_VRS or vr in ("DS", "IS", "PN"):
            value = (vr, body[offset : offset + length], charset, little)
            item = converted.get(value)
            if item is None:
                item = _raw_json(*value)
                if item is None:  # undecodable, or a malformed number: pydicom's reading
                    item = _element_json(raw.dataset()[tag])
                elif length <= _CONVERTED_BYTES:
                    if len(converted) >= _CONVERTED_MAX:
                        converted.clear()
                    converted[value] = item
        else:
            continue
        if item is not None:
            out[_key(tag)] = item
    return out


def _key(tag: int) -> str:
    key = _KEYS.get(tag)
    if key is None:
        key = f"{tag:08X}"
        if len(_KEYS) < _KEYS_MAX:
            _KEYS[tag] = key
    return key


def _converted_json(raw: RawHeader, entry: Entry) -> Json | None:
    """pydicom's JSON of an element it has converted (``DataElement.to_json_dict``)."""
    vr = raw.vr(entry)
    if vr == "SQ":
        return None
    parts = raw.plain(entry)
    if parts is None or vr is None:
        return _element_json(raw.dataset()[entry[0]])
    if parts == [""]:
        return {"vr": vr}
    if vr == "DS":
        return {"vr": vr, "Value": [float(part) for part in parts]}
    if vr == "PN":
        return {"vr": vr, "Value": [{"Alphabetic": part} for part in parts]}
    return {"vr": vr, "Value": parts}


def _empty_json(raw: RawHeader, entry: Entry) -> Json | None:
    """An empty element dcmread leaves without a value: pydicom's JSON once converted."""
    vr = KNOWN_VRS[entry[1]] if entry[1] else raw.vr(entry)  # implicit VR: the dictionary's
    if vr is None or vr == "UN" or " or " in vr:  # pydicom says which VR it makes of it
        return _element_json(raw.dataset()[entry[0]])
    return None if vr in NOT_INDEXED else {"vr": vr}
