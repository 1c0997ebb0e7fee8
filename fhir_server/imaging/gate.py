"""The RO-14 image gate: is a DICOM instance a born-digital image at its original resolution?

Pure rules over the header (read with ``stop_before_pixels=True``) and the transfer syntax: no
I/O. Each check has a stable id, the tag it looks at, its PS3.3 reference and a default action
(reject / review / accept); :class:`GatePolicy` overrides the action per check, ACCEPT turns a
check off. The checks themselves live in :mod:`fhir_server.imaging.gate_checks`. RO-43.2 (missing
study date or patient identity) is flagged here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fhir_server.imaging.gate_attributes import Header


class Action(StrEnum):
    """What the gate does when a check fires."""

    REJECT = "reject"
    REVIEW = "review"
    ACCEPT = "accept"


@dataclass(frozen=True, slots=True)
class Finding:
    """One check that fired on one instance."""

    check: str
    action: Action
    tag: str
    reason: str
    reference: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's verdict on one instance: every finding, in check order."""

    findings: tuple[Finding, ...] = ()

    @property
    def rejected(self) -> bool:
        return any(f.action is Action.REJECT for f in self.findings)

    @property
    def review(self) -> bool:
        return not self.rejected and any(f.action is Action.REVIEW for f in self.findings)

    def comment(self) -> str:
        """A DIMSE Error Comment (0000,0902): LO, at most 64 characters, ASCII.

        Names the first rejecting check and its tag (else the first finding); empty when none.
        """
        first = next((f for f in self.findings if f.action is Action.REJECT), None)
        if first is None and self.findings:
            first = self.findings[0]
        if first is None:
            return ""
        text = f"RO-14 {first.action.value}: {first.check} {first.tag}"
        if first.check.startswith("missing-study-date") or first.check.startswith(
            "missing-patient"
        ):
            text = f"RO-43.2 {first.action.value}: {first.check} {first.tag}"
        text = text.encode("ascii", "replace").decode("ascii").replace("\\", "/")
        return text[:64]

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": "reject" if self.rejected else "review" if self.review else "accept",
            "findings": [
                {
                    "check": f.check,
                    "action": f.action.value,
                    "tag": f.tag,
                    "reason": f.reason,
                    "reference": f.reference,
                }
                for f in self.findings
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(
            tuple(
                Finding(
                    check=str(item["check"]),
                    action=Action(item["action"]),
                    tag=str(item["tag"]),
                    reason=str(item["reason"]),
                    reference=str(item["reference"]),
                )
                for item in data.get("findings", ())
            )
        )


@dataclass(frozen=True, slots=True)
class Check:
    """A check of the gate as listed by :meth:`GatePolicy.checks`."""

    id: str
    action: Action  # the default action
    tag: str
    reference: str
    detects: str


@dataclass(frozen=True)
class GatePolicy:
    """The action per check id; checks absent from ``actions`` use their default."""

    actions: Mapping[str, Action] = field(default_factory=dict)

    @staticmethod
    def checks() -> tuple[Check, ...]:
        """Every check with its default action, tag and reference, in evaluation order."""
        from fhir_server.imaging.gate_checks import catalogue

        return catalogue()

    @classmethod
    def default(cls) -> GatePolicy:
        return cls({c.id: c.action for c in cls.checks()})

    @classmethod
    def parse(cls, spec: str) -> GatePolicy:
        """``"secondary-capture=review,burned-in-annotation=accept"`` over the defaults.

        Raises ValueError naming an unknown check, an unknown action or a malformed item.
        """
        actions = dict(cls.default().actions)
        for raw in spec.replace(";", ",").split(","):
            item = raw.strip()
            if not item:
                continue
            check, sep, action = (part.strip() for part in item.partition("="))
            if not sep or not check or not action:
                raise ValueError(f"gate policy item {item!r}: expected check=action")
            if check not in actions:
                known = ", ".join(sorted(actions))
                raise ValueError(f"gate policy: unknown check {check!r} (known: {known})")
            try:
                actions[check] = Action(action.lower())
            except ValueError:
                raise ValueError(
                    f"gate policy: unknown action {action!r} for check {check!r}"
                    " (reject, review or accept)"
                ) from None
        return cls(actions)

    def action(self, check: str, default: Action) -> Action:
        return self.actions.get(check, default)


def assess(header: Header, transfer_syntax: str, policy: GatePolicy) -> Verdict:
    """Run every check that the policy does not turn off; pure and fast (no I/O).

    ``header`` is a Dataset or the raw elements of a walked file
    (:class:`fhir_server.imaging.raw_header.RawHeader`)."""
    from fhir_server.imaging.gate_checks import run_checks

    findings: list[Finding] = []
    for check, tag, reason, reference, default in run_checks(header, transfer_syntax):
        action = policy.action(check, default)
        if action is not Action.ACCEPT:
            findings.append(Finding(check, action, tag, reason, reference))
    return Verdict(tuple(findings))
