"""The sending applications this server accepts HL7 v2 messages from (the MLLP allow-list).

One entry per sender, given as ``--hl7-sender`` (repeatable) or ``FHIR_SERVER_HL7_SENDERS``
(entries separated by whitespace)::

    APP[^FACILITY]=Organization/<id>[;destination=NAME][;authority:CODE=SYSTEM]...

``APP`` and ``FACILITY`` are the namespace ids (first component) of MSH-3 and MSH-4; without
``^FACILITY`` the entry matches the application from any facility. ``authority:CODE=SYSTEM``
maps a PID-3 assigning authority (CX-4) to the FHIR Identifier.system; ``destination`` names the
``--hl7-destination`` its results (ORU^R01) go to. Example::

    --hl7-sender 'RIS^CITYHOSP=Organization/city;destination=ris;authority:CITYHOSP=urn:oid:1.2.3'

With ``--auth smart`` only listed senders are accepted (others get AR); with ``--auth off``
anyone is accepted, and a listed sender still gets its Organization and systems.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class SenderConfig:
    application: str  # MSH-3 namespace id
    facility: str  # MSH-4 namespace id ("" = any facility, in a configured entry)
    organization: str | None = None  # "Organization/<id>": who sends, on every resource written
    identifier_systems: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    destination: str | None = None  # the --hl7-destination its results go to


def parse_sender(spec: str) -> SenderConfig:
    """One ``--hl7-sender`` entry; ValueError naming what is wrong."""
    who, sep, rest = spec.strip().partition("=")
    if not sep or not who:
        raise ValueError(f"--hl7-sender {spec!r}: expected APP[^FACILITY]=Organization/<id>[;...]")
    application, _, facility = who.partition("^")
    organization, *options = rest.split(";")
    if organization and not organization.startswith("Organization/"):
        raise ValueError(f"--hl7-sender {spec!r}: {organization!r} is not Organization/<id>")
    destination: str | None = None
    systems: dict[str, str] = {}
    for option in options:
        name, eq, value = option.partition("=")
        if not eq or not value:
            raise ValueError(f"--hl7-sender {spec!r}: option {option!r} needs NAME=VALUE")
        if name == "destination":
            destination = value
        elif name.startswith("authority:") and len(name) > len("authority:"):
            systems[name.removeprefix("authority:")] = value
        else:
            raise ValueError(
                f"--hl7-sender {spec!r}: unknown option {name!r} "
                "(destination=NAME or authority:CODE=SYSTEM)"
            )
    return SenderConfig(
        application, facility, organization or None, MappingProxyType(systems), destination
    )


class Senders:
    """The allow-list: :meth:`resolve` gives the sender's configuration, or None (reject)."""

    def __init__(self, configs: Iterable[SenderConfig], *, accept_any: bool) -> None:
        self._exact: dict[tuple[str, str], SenderConfig] = {}
        self._any_facility: dict[str, SenderConfig] = {}
        for config in configs:
            if config.facility:
                self._exact[(config.application, config.facility)] = config
            else:
                self._any_facility[config.application] = config
        self.accept_any = accept_any

    @classmethod
    def from_specs(cls, specs: Iterable[str], *, accept_any: bool) -> Senders:
        return cls([parse_sender(spec) for spec in specs], accept_any=accept_any)

    def __len__(self) -> int:
        return len(self._exact) + len(self._any_facility)

    def resolve(self, application: str, facility: str) -> SenderConfig | None:
        """``application``/``facility``: MSH-3/MSH-4 (only their first component counts)."""
        app = application.split("^", 1)[0]
        fac = facility.split("^", 1)[0]
        found = self._exact.get((app, fac)) or self._any_facility.get(app)
        if found is not None:
            return found
        return SenderConfig(app, fac) if self.accept_any else None
