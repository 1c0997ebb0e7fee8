"""Write (or check) the JSON resources of terminology/ from the definitions in this folder.

The definitions (codes, displays, designations, definitions, sources, licences) live in
codesystems.py, valuesets.py, conceptmaps.py and cn_subjects.py; common.py holds the canonical
base, the licence texts and the builders, including the generated narrative. Edit them, then

    .venv/bin/python terminology/definitions/generate.py          # rewrite terminology/*.json
    .venv/bin/python terminology/definitions/generate.py --check  # exit 1 if a file is out of date

tests/unit/terminology_content runs the check, so the JSON and these definitions stay in step.
Build-time only: nothing in the server imports this folder.
"""

from __future__ import annotations

import sys

from codesystems import CODESYSTEMS
from common import OUT, render
from conceptmaps import CONCEPTMAPS
from v2_maps import V2_CONCEPTMAPS
from valuesets import VALUESETS


def main(argv: list[str]) -> int:
    check = "--check" in argv
    expected = {}
    for resource in CODESYSTEMS + VALUESETS + CONCEPTMAPS + V2_CONCEPTMAPS:
        name = f"{resource['resourceType']}-{resource['id']}.json"
        expected[name] = render(resource)
    stale = sorted(
        name
        for name, text in expected.items()
        if not (OUT / name).is_file() or (OUT / name).read_text(encoding="utf-8") != text
    )
    extra = sorted(p.name for p in OUT.glob("*.json") if p.name not in expected)
    if check:
        for name in stale:
            print(f"out of date: terminology/{name}")
        for name in extra:
            print(f"not generated: terminology/{name}")
        return 1 if stale or extra else 0
    for name in stale:
        (OUT / name).write_text(expected[name], encoding="utf-8")
        print(f"wrote terminology/{name}")
    for name in extra:
        print(f"not generated (left alone): terminology/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
