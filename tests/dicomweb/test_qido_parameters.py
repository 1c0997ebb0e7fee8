"""QIDO-RS query parameters over HTTP (PS3.18 Table 8.3.4-1) with dicomweb-client and requests:
a UID list written with commas (a viewer opening several studies), ``emptyvaluematching``,
``multiplevaluematching``, ``fuzzymatching`` (not offered: the Warning the standard prescribes),
and bad parameters named in a 400."""

from __future__ import annotations

from typing import Any

import requests
from dicomweb_client.api import DICOMwebClient

from tests.dicom.orthanc import ct_study
from tests.dicomweb.conftest import DicomWeb
from tests.dicomweb.test_dicomweb import call, stow, uid_of, values


async def _stow_three(dicomweb: DicomWeb) -> tuple[str, str, str]:
    """Three one-instance studies of patient QP: with accession QA, QB and none."""
    files = [
        *ct_study("QP", "20240105", 1, accession="QA"),
        *ct_study("QP", "20240106", 1, accession="QB"),
        *ct_study("QP", "20240107", 1),
    ]
    assert (await call(stow, dicomweb.url, files)).status_code == 200
    a, b, c = (uid_of(f, "StudyInstanceUID") for f in files)
    return a, b, c


async def test_a_uid_list_with_commas_finds_each_study(dicomweb: DicomWeb) -> None:
    a, b, _ = await _stow_three(dicomweb)
    client = DICOMwebClient(dicomweb.url)
    found = await call(client.search_for_studies, search_filters={"StudyInstanceUID": f"{a},{b}"})
    assert sorted(values(item, "0020000D")[0] for item in found) == sorted([a, b])
    series = await call(
        client.search_for_series, search_filters={"StudyInstanceUID": f"{b},1.2.3.4"}
    )
    assert [values(s, "0020000D")[0] for s in series] == [b]


async def test_empty_and_multiple_value_matching(dicomweb: DicomWeb) -> None:
    a, _, c = await _stow_three(dicomweb)
    client = DICOMwebClient(dicomweb.url)

    async def studies(**params: Any) -> list[str]:
        found = await call(
            client.search_for_studies, search_filters={"PatientID": "QP"},
            additional_params=params,
        )  # fmt: skip
        return sorted(values(item, "0020000D")[0] for item in found)

    assert await studies(AccessionNumber="QA") == [a]
    assert await studies(AccessionNumber="QA", emptyvaluematching="true") == sorted([a, c])
    assert await studies(AccessionNumber='""', emptyvaluematching="true") == [c]
    assert await studies(AccessionNumber="QA", emptyvaluematching="false") == [a]
    assert await studies(ModalitiesInStudy="CT", multiplevaluematching="true") == sorted(
        await studies()
    )
    assert await studies(ModalitiesInStudy="CT,MR", multiplevaluematching="true") == []


async def test_fuzzy_matching_is_answered_with_the_warning_of_ps3_18(dicomweb: DicomWeb) -> None:
    await _stow_three(dicomweb)
    url = f"{dicomweb.url}/studies?PatientName=*&fuzzymatching=true"
    response = await call(requests.get, url, timeout=30)
    assert response.status_code == 200 and response.json()
    warning = response.headers["Warning"]
    assert warning.startswith("299 ") and "fuzzymatching parameter is not supported" in warning
    plain = await call(requests.get, f"{dicomweb.url}/studies?fuzzymatching=false", timeout=30)
    assert plain.status_code == 200 and "Warning" not in plain.headers


async def test_bad_query_parameters_are_named(dicomweb: DicomWeb) -> None:
    for query, named in [
        ("emptyvaluematching=yes", "emptyvaluematching"),
        ("multiplevaluematching=1", "multiplevaluematching"),
        ("PatientID=A&PatientID=B", "PatientID is given twice"),
        ("NoSuchAttribute=1", "NoSuchAttribute"),
        ("StudyDate=2004", "'2004' is not a DA value: expected YYYYMMDD"),
        ("StudyDate=20040101-2005", "'20040101-2005' is not a DA value"),
        ("StudyTime=noon", "'noon' is not a TM value"),
        ("ReferencedStudySequence=1.2", "ReferencedStudySequence='1.2': is a sequence"),
    ]:
        response = await call(requests.get, f"{dicomweb.url}/studies?{query}", timeout=30)
        assert response.status_code == 400, query
        assert named in response.text, (query, response.text)
