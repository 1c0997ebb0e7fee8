"""Server-assigned ids: random (version 4) UUIDs, fetched from os.urandom in batches."""

from __future__ import annotations

import os
import uuid

from fhir_server.core.ids import is_valid_id, new_id, random_uuid


def test_random_uuids_are_version_4_uuids_in_canonical_text() -> None:
    for text in (random_uuid() for _ in range(1_000)):  # several batches of 64
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text  # lower case, hyphens where uuid puts them


def test_random_uuids_do_not_repeat() -> None:
    ids = [new_id() for _ in range(100_000)]
    assert len(set(ids)) == len(ids)
    assert all(is_valid_id(i) for i in ids[:100])


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    random_uuid()  # the parent holds a batch with ids still unused
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        try:
            os.write(write, " ".join(random_uuid() for _ in range(3)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split()
    os.waitpid(pid, 0)
    parent = [random_uuid() for _ in range(3)]
    assert len(child) == 3 and not set(child) & set(parent)
