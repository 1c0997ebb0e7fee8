"""A transaction is all or nothing even when the server process is killed (SIGKILL) under it.

``fhir-server serve`` runs on a data dir; a transaction of 2,000 entries (1,000 Patients PUT with
ids of the attempt, 1,000 Observations POSTed about them through ``urn:uuid:`` fullUrls, every
resource tagged with an identifier system unique to the attempt) is sent on a raw connection,
and the server is SIGKILLed:

- at delays spread over the measured duration ``T`` of a complete run of the same size (0.15 to
  1.2 ``T``): while the entries are read, planned and validated, and near the end;
- once it has written a fraction of what the complete run wrote (``wchar`` of /proc/PID/io).
  Until its commit the server writes next to nothing; the commit writes the WAL frames of the
  whole unit of work in one burst of megabytes, then the answer. These kills land inside that
  burst (the commit frame, written last, is then missing), and one lands just after it (the
  fsync, or the answer being built: the commit is complete).

After each kill the server is started again on the same data dir and must

- hold either every resource of the attempt or none (searched with ``_total=accurate``: the
  Patients, the Observations, and the Observations whose subject is one of the Patients; and
  the history of sampled Patient ids: one version each, or unknown);
- start and serve normally (metadata, a create and a read), and take the next attempt.

Which of the two a kill gives is timing, so it is not asserted, except at the extremes: the
complete run answered 200 and, killed afterwards, still holds everything (a 200 is on disk); an
attempt that answered before its kill holds everything; at least one attempt holds nothing. At
the end the whole server history holds exactly the versions of the attempts stored and of the
checks, nothing of the others. Run with ``-s`` to see where each kill landed. Linux only
(/proc), as the benchmark harness.
"""

from __future__ import annotations

import signal
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import ServerProcess

pytestmark = pytest.mark.socket

PATIENTS = 1_000  # and as many Observations: 2,000 entries
SYSTEM = "urn:uuid:"  # + a uuid per attempt: the identifier system that tags the attempt
#: Kills after a delay: fractions of the measured duration of a complete run (reading, planning
#: and staging the entries take nearly all of it; the last ones may answer first).
SECONDS = (0.15, 0.5, 0.9, 1.2)
#: Kills once the server has written a fraction of what the complete run wrote (its commit: the
#: WAL frames of the unit of work, then the answer), to land inside the commit.
WRITTEN = (0.05, 0.45, 0.85)
#: A kill once the commit's burst of writes is over (more than half of it written, then nothing
#: for a few milliseconds: the fsync, or the answer being built).
QUIET = 0.5
SAMPLED = (0, 1, PATIENTS // 2, PATIENTS - 1)  # Patients whose history is checked


@dataclass(frozen=True, slots=True)
class Attempt:
    name: str  # the id prefix of its Patients
    system: str  # the identifier system of all its resources
    body: bytes

    def patient_id(self, index: int) -> str:
        return f"{self.name}-{index}"


def attempt(name: str) -> Attempt:
    system = f"{SYSTEM}{uuid.uuid4()}"
    entries: list[dict[str, Any]] = []
    for i in range(PATIENTS):
        id = f"{name}-{i}"
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{system}/p/{i}')}",
                "resource": {
                    "resourceType": "Patient",
                    "id": id,
                    "identifier": [{"system": system, "value": f"p{i}"}],
                    "name": [{"family": f"Crash{i}", "given": ["Test"]}],
                    "birthDate": f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10}",
                },
                "request": {"method": "PUT", "url": f"Patient/{id}"},
            }
        )
    for i in range(PATIENTS):
        patient = entries[i]["fullUrl"]
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{system}/o/{i}')}",
                "resource": {
                    "resourceType": "Observation",
                    "identifier": [{"system": system, "value": f"o{i}"}],
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "subject": {"reference": patient},
                    "effectiveDateTime": "2026-01-02T10:00:00Z",
                    "valueQuantity": {
                        "value": 60 + i % 40,
                        "unit": "/min",
                        "system": "http://unitsofmeasure.org",
                        "code": "/min",
                    },
                },
                "request": {"method": "POST", "url": "Observation"},
            }
        )
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    return Attempt(name, system, orjson.dumps(bundle))


# -- the server process -----------------------------------------------------------------------


def start(data_dir: Path) -> ServerProcess:
    server = ServerProcess(data_dir, "--log-level", "warning")
    server.wait_ready(timeout=60)
    return server


def kill(server: ServerProcess) -> None:
    """SIGKILL: no shutdown code of the server runs."""
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=30)
    assert server.process.returncode == -signal.SIGKILL
    server.stop()  # closes the log file (the process is gone already)


def written(server: ServerProcess) -> int:
    """Bytes the server process has handed to write calls so far (``wchar`` of /proc/PID/io):
    while a transaction is read, planned and staged, it writes next to nothing; its commit
    writes the WAL frames of the whole unit of work (megabytes) in one burst before the answer."""
    for line in Path(f"/proc/{server.process.pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/PID/io")


def send(server: ServerProcess, body: bytes) -> socket.socket:
    """POST the transaction on a raw connection; returns once the whole request is written."""
    head = (
        "POST /fhir HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        "Content-Type: application/fhir+json\r\n"
        "Prefer: return=minimal\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    connection = socket.create_connection(("127.0.0.1", server.port))
    connection.sendall(head + body)
    connection.setblocking(False)
    return connection


@dataclass(frozen=True, slots=True)
class Run:
    status: int | None  # the answer's status, None if it was killed before answering
    seconds: float  # from the request written to the answer or the kill
    written: int  # bytes the server wrote meanwhile


def run(
    server: ServerProcess,
    body: bytes,
    *,
    after: float | None = None,
    once_written: int | None = None,
    quiet_after: int | None = None,
) -> Run:
    """Send the transaction and SIGKILL the server ``after`` seconds, or as soon as it has
    written ``once_written`` bytes, or when it stops writing for 3 ms after ``quiet_after``
    bytes, or once it answers (whichever comes first)."""
    before = written(server)
    started = still = time.monotonic()
    connection = send(server, body)
    status, grown = None, 0
    while True:
        now = time.monotonic()
        elapsed = now - started
        previous, grown = grown, written(server) - before
        if grown != previous:
            still = now
        try:
            first = connection.recv(64)
        except BlockingIOError:
            first = None
        if first is not None:
            assert first.startswith(b"HTTP/1.1 "), f"no HTTP answer: {first!r}"
            status = int(first.split(b" ", 2)[1])
            break
        if after is not None and elapsed >= after:
            break
        if once_written is not None and grown >= once_written:
            break
        if quiet_after is not None and grown >= quiet_after and now - still >= 0.003:
            break
        assert elapsed < 120, "the server did not answer the transaction in 120 s"
        time.sleep(0.0003)
    kill(server)
    connection.close()
    return Run(status, elapsed, grown)


# -- what the restarted server holds ----------------------------------------------------------


def total(client: httpx.Client, query: str) -> int:
    response = client.get(f"/fhir/{query}&_total=accurate&_count=0")
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def held(client: httpx.Client, tried: Attempt) -> int:
    """How many resources of the attempt the server holds; fails unless all or none."""
    patients = total(client, f"Patient?identifier={tried.system}|")
    observations = total(client, f"Observation?identifier={tried.system}|")
    linked = total(
        client, f"Observation?identifier={tried.system}|&subject:Patient.identifier={tried.system}|"
    )
    counts = (patients, observations, linked)
    assert counts in ((0, 0, 0), (PATIENTS, PATIENTS, PATIENTS)), (tried.name, counts)
    for index in SAMPLED:
        history = client.get(f"/fhir/Patient/{tried.patient_id(index)}/_history")
        if patients:
            assert history.status_code == 200, history.text
            versions = [e["resource"]["meta"]["versionId"] for e in history.json()["entry"]]
            assert versions == ["1"], (tried.name, index, versions)
        else:
            assert history.status_code == 404, (tried.name, index, history.status_code)
    return patients + observations


def serves_normally(client: httpx.Client) -> None:
    assert client.get("/fhir/metadata").status_code == 200
    created = client.post(
        "/fhir/Patient",
        json={"resourceType": "Patient", "name": [{"family": "AfterRestart"}]},
        headers={"Content-Type": "application/fhir+json"},
    )
    assert created.status_code == 201, created.text
    read = client.get(f"/fhir/Patient/{created.json()['id']}")
    assert read.status_code == 200 and read.json()["name"] == [{"family": "AfterRestart"}]


def all_versions(client: httpx.Client) -> int:
    count, url = 0, "/fhir/_history?_count=1000"
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.text
        count += len(page.json().get("entry", []))
        url = next((x["url"] for x in page.json()["link"] if x["relation"] == "next"), "")
    return count


# -- the test ---------------------------------------------------------------------------------


def test_cn4_1_4_sigkill_during_a_large_transaction_keeps_all_or_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start(data_dir)
    outcomes: list[tuple[str, Run, int]] = []
    stored = 0  # resources of the attempts found after the restarts
    checks = 0  # resources created by serves_normally
    try:
        # A complete run, timed; killed once answered: everything is there after the restart.
        complete = attempt("full")
        measured = run(server, complete.body)
        assert measured.status == 200, f"the complete run answered {measured.status}"
        server = start(data_dir)
        with httpx.Client(base_url=server.base, timeout=60) as client:
            assert held(client, complete) == 2 * PATIENTS
            serves_normally(client)
        stored, checks = 2 * PATIENTS, 1
        outcomes.append(("complete", measured, 2 * PATIENTS))

        kills: list[dict[str, Any]] = [{"after": f * measured.seconds} for f in SECONDS]
        kills += [{"once_written": int(f * measured.written)} for f in WRITTEN]
        kills.append({"quiet_after": int(QUIET * measured.written)})
        for n, trigger in enumerate(kills):
            tried = attempt(f"kill{n}")
            killed = run(server, tried.body, **trigger)
            server = start(data_dir)
            with httpx.Client(base_url=server.base, timeout=60) as client:
                found = held(client, tried)
                serves_normally(client)
            if killed.status is not None:  # it answered before the trigger: it must be stored
                assert (killed.status, found) == (200, 2 * PATIENTS), (tried.name, killed)
            stored += found
            checks += 1
            outcomes.append((tried.name, killed, found))

        report = "; ".join(
            f"{name}: {'answered' if r.status else 'killed'} at {r.seconds:.3f} s, "
            f"{r.written:,} bytes written -> {found}"
            for name, r, found in outcomes
        )
        print(f"\n{report}")
        assert any(found == 0 for _, _, found in outcomes), report

        # The whole history: the versions of the attempts stored and of the checks, no others.
        with httpx.Client(base_url=server.base, timeout=60) as client:
            assert all_versions(client) == stored + checks, report
    finally:
        server.stop()
