"""The cyclic garbage collector tuned for a long-running server process.

CPython's defaults (a generation-0 collection every 700 container allocations, the oldest
generation traversed whenever it grew by a quarter) are made for short scripts. This server
allocates containers by the hundred per request — every parsed JSON body, DICOM JSON header,
validation walk and HL7 segment — and holds a large, permanent heap built at start-up (the R4
StructureDefinitions, search parameters, mapping tables, pydantic models, pydicom's
dictionaries): about 140,000 tracked objects that every full collection would walk again.

Measured here (2026-12-04): parsing the 50 instance records of a study (4 KB each) took
6.8 ms with the defaults in the started server and 2.3 ms with the collector off; HL7 v2
orders mapped to FHIR ran 5-10 % faster with the settings below.

:func:`settle` is called once the application has started (``serve`` only; tests and
embedding code keep the interpreter's defaults): it collects what start-up left, then freezes
every surviving object (``gc.freeze``: moved to a permanent generation that collections never
traverse; start-up objects live as long as the process anyway) and raises the generation-0
threshold so that collections run about fourteen times less often. Reference counting still
frees almost everything at once; only cycles wait for a collection, and ``GENERATION_0`` of
them at most is a few MB.
"""

from __future__ import annotations

import gc
from typing import Final

#: Container allocations (minus deallocations) between two generation-0 collections.
GENERATION_0: Final = 10_000


def settle() -> None:
    """Collect, freeze the surviving start-up heap, and collect less often from now on."""
    gc.collect()
    gc.freeze()
    _, generation_1, generation_2 = gc.get_threshold()
    gc.set_threshold(GENERATION_0, generation_1, generation_2)
