"""A study's instance headers → its series and study index records and its R4 ImagingStudy.

Pure functions over the ``dicom-instance`` records (DICOM JSON headers, see
:mod:`fhir_server.imaging.attributes`). The ImagingStudy follows the R4 ``dicom`` mapping column
(identifier: Study Instance UID as ``urn:dicom:uid``, Accession Number typed ACSN, Study ID;
modality and series modality in the DCM code system; started from Study Date and Time with
Timezone Offset From UTC or the site's zone; series body site from Body Part Examined; instance
SOP Class as ``urn:ietf:rfc:3986``). Empty DICOM values are dropped (FHIR strings cannot be
empty). :func:`merge` keeps what other writers added to an existing ImagingStudy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fhir_server.imaging.attributes import first, pick, tag_key, values
from fhir_server.imaging.date_index import date_put
from fhir_server.imaging.kinds import ACCESSION, SERIES, STUDY
from fhir_server.imaging.modality_index import modality_puts
from fhir_server.imaging.name_index import name_puts
from fhir_server.storage.records import RecordPut

Json = dict[str, Any]
DCM = "http://dicom.nema.org/resources/ontology/DCM"
DICOM_UID = "urn:dicom:uid"
RFC3986 = "urn:ietf:rfc:3986"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
SNOMED = "http://snomed.info/sct"
REVIEW_PREFIX = "Flagged for review"
PATIENT_KEYWORDS = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate",
                    "PatientSex", "OtherPatientIDs")  # fmt: skip
STUDY_KEYWORDS = ("StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber",
                  "ReferringPhysicianName", "StudyID", "StudyDescription",
                  "TimezoneOffsetFromUTC", "SpecificCharacterSet", "InstitutionName")  # fmt: skip
SERIES_KEYWORDS = ("SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
                   "BodyPartExamined", "Laterality", "SeriesDate", "SeriesTime",
                   "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime",
                   "RequestAttributesSequence", "StationName", "Manufacturer")  # fmt: skip
#: Body Part Examined (0018,0015) → SNOMED CT, the common entries of PS3.16 Annex L.
BODY_PARTS = {
    "ABDOMEN": ("113345001", "Abdomen"), "ANKLE": ("70258002", "Ankle joint"),
    "BRAIN": ("12738006", "Brain"), "BREAST": ("76752008", "Breast"),
    "CHEST": ("51185008", "Thorax"), "CSPINE": ("122494005", "Cervical spine"),
    "ELBOW": ("16953009", "Elbow joint"), "FOOT": ("56459004", "Foot"),
    "HAND": ("85562004", "Hand"), "HEAD": ("69536005", "Head"),
    "HEART": ("80891009", "Heart"), "HIP": ("24136001", "Hip joint"),
    "KNEE": ("72696002", "Knee"), "LSPINE": ("122496007", "Lumbar spine"),
    "NECK": ("45048000", "Neck"), "PELVIS": ("12921003", "Pelvis"),
    "SHOULDER": ("16982005", "Shoulder"), "SKULL": ("89546000", "Skull"),
    "TSPINE": ("122495006", "Thoracic spine"), "WRIST": ("74670003", "Wrist joint"),
}  # fmt: skip


#: What the mapping reads of every instance record (a study's writer reads only these, plus the
#: whole records of the instances :func:`leading` names): Instance Number, Image Type,
#: Modality.
INSTANCE_FIELDS = ("sop_instance", "series", "sop_class", "verdict", "attributes.00200013",
                   "attributes.00080008", "attributes.00080060")  # fmt: skip


def leading(instances: Sequence[Mapping[str, Any]]) -> list[int]:
    """The positions in ``instances`` (in SOP Instance UID order, each with
    :data:`INSTANCE_FIELDS`) of those whose whole records the mapping reads: the first of the
    study and of each series, in that order (:func:`index_puts`) and in series and instance
    order (:func:`imaging_study`)."""
    chosen: set[int] = set()
    by_series: dict[str, list[int]] = {}
    for position, record in enumerate(instances):
        by_series.setdefault(str(record["series"]), []).append(position)
    for positions in by_series.values():  # the study's firsts, both ways, are among these
        chosen.add(positions[0])
        chosen.add(min(positions, key=lambda p: _sort_key(instances[p])))
    return sorted(chosen)


def _uid_identifier(uid: str) -> Json:
    return {"system": DICOM_UID, "value": f"urn:oid:{uid}"}


def study_identifier_query(uid: str) -> str:
    """The FHIR search that finds a study's ImagingStudy."""
    return f"identifier={DICOM_UID}|urn:oid:{uid}"


def _int(attributes: Mapping[str, Any], keyword: str) -> int | None:
    found = values(attributes, keyword)
    try:
        return int(found[0]) if found and found[0] is not None else None
    except (TypeError, ValueError):
        return None


def _sort_key(record: Mapping[str, Any]) -> tuple[int, str]:
    number = _int(record.get("attributes", {}), "InstanceNumber")
    return (number if number is not None else 1 << 31, str(record.get("sop_instance", "")))


def series_records(study_uid: str, instances: Sequence[Mapping[str, Any]]) -> list[Json]:
    """One ``dicom-series`` value per series: its series attributes, the patient and study
    attributes, and Number of Series Related Instances (0020,1209)."""
    by_series: dict[str, list[Mapping[str, Any]]] = {}
    for record in instances:
        by_series.setdefault(str(record["series"]), []).append(record)
    out = []
    for series_uid, members in by_series.items():
        attributes = members[0].get("attributes", {})
        merged = pick(attributes, (*PATIENT_KEYWORDS, *STUDY_KEYWORDS, *SERIES_KEYWORDS))
        merged[tag_key(0x00201209)] = {"vr": "IS", "Value": [len(members)]}
        out.append({"study": study_uid, "series": series_uid, "attributes": merged})
    return out


def study_record(
    study_uid: str,
    instances: Sequence[Mapping[str, Any]],
    imaging_study: str | None,
    organization: str | None,
) -> Json:
    """The ``dicom-study`` value: patient and study attributes with Modalities in Study
    (0008,0061) and the Number of Study Related Series (0020,1206) and Instances (0020,1208),
    (put with :func:`study_puts`)."""
    attributes = instances[0].get("attributes", {}) if instances else {}
    merged = pick(attributes, (*PATIENT_KEYWORDS, *STUDY_KEYWORDS))
    modalities = sorted({m for r in instances for m in values(r.get("attributes", {}), "Modality")
                         if m})  # fmt: skip
    if modalities:
        merged[tag_key(0x00080061)] = {"vr": "CS", "Value": modalities}
    merged[tag_key(0x00201206)] = {"vr": "IS", "Value": [len({r["series"] for r in instances})]}
    merged[tag_key(0x00201208)] = {"vr": "IS", "Value": [len(instances)]}
    return {
        "study": study_uid,
        "attributes": merged,
        "imaging_study": imaging_study,
        "organization": organization,
    }


def study_puts(value: Json) -> list[RecordPut]:
    """The puts of a ``dicom-study`` record, with its Patient ID (0010,0020) as ``patient``,
    its indexed field when it has one (a patient's studies are found without reading the
    others: QIDO/C-FIND by PatientID, C-MOVE/C-GET at PATIENT level), and of its
    ``dicom-accession`` record (the study's Accession Number, indexed) when it has one, of
    its ``dicom-study-date`` record when it has a Study Date (date_index.py), of its
    ``dicom-study-name`` records when it has a Patient's Name (name_index.py) and of its
    ``dicom-study-modality`` records (modality_index.py)."""
    study = str(value["study"])
    attributes = value.get("attributes") or {}
    patient = first(attributes, "PatientID")
    value = {**value, "patient": patient}
    puts = [RecordPut(STUDY, study, value, index="patient" if patient else None)]
    accession = first(attributes, "AccessionNumber")
    if accession:
        alias = {"study": study, "accession": accession}
        puts.append(RecordPut(ACCESSION, study, alias, index="accession"))
    dated = date_put(study, attributes)
    if dated is not None:
        puts.append(dated)
    return puts + name_puts(study, attributes) + modality_puts(study, attributes)


def index_puts(
    study: str, instances: Sequence[Mapping[str, Any]], reference: str, organization: str | None
) -> list[RecordPut]:
    """The puts of a study's series records and of its study record (with its accession and
    date records), once its ImagingStudy ``reference`` is written."""
    puts = [
        RecordPut(SERIES, s["series"], s, index="study") for s in series_records(study, instances)
    ]
    return puts + study_puts(study_record(study, instances, reference, organization))


def started(date: str | None, time: str | None, offset: str | None, zone: str) -> str | None:
    """DA + TM (+ Timezone Offset From UTC, else the site zone) → FHIR dateTime."""
    if not date or len(date) != 8 or not date.isdigit():
        return None
    day = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    digits = (time or "").split(".")[0].replace(":", "")
    if len(digits) < 2 or not digits.isdigit():
        return day
    digits = (digits + "0000")[:6]
    hh, mm, ss = digits[:2], digits[2:4], digits[4:6]
    if offset and len(offset) == 5 and offset[0] in "+-" and offset[1:].isdigit():
        suffix = f"{offset[:3]}:{offset[3:]}"
    else:
        try:
            moment = datetime.fromisoformat(f"{day}T{hh}:{mm}:{ss}").replace(tzinfo=ZoneInfo(zone))
        except ValueError:
            return day
        text = moment.isoformat()
        return text if "+" in text[10:] or "-" in text[10:] else text + "Z"
    return f"{day}T{hh}:{mm}:{ss}{suffix}"


def _modality(code: str) -> Json:
    return {"system": DCM, "code": code}


def _body_site(value: str) -> Json:
    known = BODY_PARTS.get(value.upper())
    if known is None:
        return {"display": value}
    return {"system": SNOMED, "code": known[0], "display": known[1]}


def _instance(record: Mapping[str, Any]) -> Json:
    attributes = record.get("attributes", {})
    item: Json = {
        "uid": str(record["sop_instance"]),
        "sopClass": {"system": RFC3986, "code": f"urn:oid:{record['sop_class']}"},
    }
    number = _int(attributes, "InstanceNumber")
    if number is not None and number >= 0:
        item["number"] = number
    image_type = values(attributes, "ImageType")
    if image_type:
        item["title"] = "\\".join(str(v) for v in image_type if v is not None) or None
        if not item["title"]:
            del item["title"]
    return item


def _series(zone: str, members: Sequence[Mapping[str, Any]]) -> Json:
    members = sorted(members, key=_sort_key)
    attributes = members[0].get("attributes", {})
    item: Json = {"uid": str(members[0]["series"])}
    number = _int(attributes, "SeriesNumber")
    if number is not None and number >= 0:
        item["number"] = number
    item["modality"] = _modality(first(attributes, "Modality") or "OT")
    description = first(attributes, "SeriesDescription")
    if description:
        item["description"] = description
    item["numberOfInstances"] = len(members)
    body = first(attributes, "BodyPartExamined")
    if body:
        item["bodySite"] = _body_site(body)
    laterality = first(attributes, "Laterality")
    if laterality in ("L", "R"):
        code, display = ("7771000", "Left") if laterality == "L" else ("24028007", "Right")
        item["laterality"] = {"system": SNOMED, "code": code, "display": display}
    offset = first(attributes, "TimezoneOffsetFromUTC")
    when = started(first(attributes, "SeriesDate"), first(attributes, "SeriesTime"), offset, zone)
    if when:
        item["started"] = when
    item["instance"] = [_instance(r) for r in members]
    return item


def _review_notes(instances: Iterable[Mapping[str, Any]]) -> list[Json]:
    """One note per review check that fired: how many instances, the first reason."""
    counts: dict[str, list[Any]] = {}
    for record in instances:
        for finding in (record.get("verdict") or {}).get("findings", ()):
            if finding.get("action") == "review":
                entry = counts.setdefault(str(finding["check"]), [0, finding])
                entry[0] += 1
    notes = []
    for check, (count, finding) in counts.items():
        rule = "RO-43.2" if check.startswith("missing-") else "RO-14"
        notes.append({"text": f"{REVIEW_PREFIX} ({rule}): {check} {finding['tag']} on {count}"
                              f" instance(s): {finding['reason']}"})  # fmt: skip
    return notes


def imaging_study(
    study_uid: str,
    instances: Sequence[Mapping[str, Any]],
    *,
    subject: Json,
    based_on: Sequence[Json],
    endpoint: Json | None,
    zone: str,
) -> Json:
    """The managed part of the study's ImagingStudy (R4), from every instance stored."""
    ordered = sorted(instances, key=lambda r: (str(r["series"]), _sort_key(r)))
    attributes = ordered[0].get("attributes", {}) if ordered else {}
    identifiers = [_uid_identifier(study_uid)]
    accession = first(attributes, "AccessionNumber")
    if accession:
        identifiers.append({
            "type": {"coding": [{"system": V2_0203, "code": "ACSN"}]}, "value": accession,
        })  # fmt: skip
    study_id = first(attributes, "StudyID")
    if study_id:
        identifiers.append({"type": {"text": "Study ID (0020,0010)"}, "value": study_id})
    by_series: dict[str, list[Mapping[str, Any]]] = {}
    for record in ordered:
        by_series.setdefault(str(record["series"]), []).append(record)
    series = [_series(zone, members) for members in by_series.values()]
    series.sort(key=lambda s: (s.get("number", 1 << 31), s["uid"]))
    body: Json = {
        "resourceType": "ImagingStudy",
        "identifier": identifiers,
        "status": "available",
        "modality": [_modality(m) for m in sorted({s["modality"]["code"] for s in series})],
        "subject": subject,
    }
    when = started(
        first(attributes, "StudyDate"), first(attributes, "StudyTime"),
        first(attributes, "TimezoneOffsetFromUTC"), zone,
    )  # fmt: skip
    if when:
        body["started"] = when
    if based_on:
        body["basedOn"] = list(based_on)
    referrer = first(attributes, "ReferringPhysicianName")
    if referrer:
        body["referrer"] = {"display": referrer.replace("^", " ").strip()}
    if endpoint is not None:
        body["endpoint"] = [endpoint]
    body["numberOfSeries"] = len(series)
    body["numberOfInstances"] = len(ordered)
    description = first(attributes, "StudyDescription")
    if description:
        body["description"] = description
    notes = _review_notes(ordered)
    if notes:
        body["note"] = notes
    body["series"] = series
    return body


def merge(existing: Mapping[str, Any] | None, managed: Json) -> Json:
    """``managed`` over ``existing``: identifiers and basedOn are unions, notes keep those not
    written by the gate, elements the mapping does not manage (reasonCode, interpreter,
    encounter…) are kept."""
    if not existing:
        return managed
    out = {k: v for k, v in existing.items() if k not in ("meta", "text")}
    for key, value in managed.items():
        if key == "identifier" or key == "basedOn":
            out[key] = _union(value, existing.get(key, ()))
        else:
            out[key] = value
    kept = [n for n in existing.get("note", ()) if not str(n.get("text", "")).startswith(
        REVIEW_PREFIX)]  # fmt: skip
    notes = kept + list(managed.get("note", ()))
    if notes:
        out["note"] = notes
    else:
        out.pop("note", None)
    if "id" in existing:
        out["id"] = existing["id"]
    return out


def _union(first_items: Iterable[Any], second: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for item in [*first_items, *second]:
        if item not in out:
            out.append(item)
    return out
