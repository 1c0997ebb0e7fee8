"""The rule set: which resources must meet which profiles, whether they claim them or not.

A deployment states it in a JSON file (``--validation-rules``; the shipped one is
profiles/rulesets/telemedicine.json)::

    {"rules": [
      {"resourceType": "ServiceRequest",
       "where": "category.coding.where(system = 'https://…/CodeSystem/teleradiology-purpose').exists()",
       "profile": "https://…/StructureDefinition/teleradiology-servicerequest",
       "why": "RO-4, RO-39, RO-44"}
    ]}

``where`` (optional) is a FHIRPath expression evaluated on the resource: the rule applies when it is
true; without it the rule applies to every resource of the type. A rule whose ``where`` cannot be
evaluated applies (a safeguard must not switch itself off).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

#: Evaluates a FHIRPath condition on a resource: True, False or None (cannot tell).
Condition = Callable[[str, dict[str, Any]], bool | None]


@dataclass(frozen=True, slots=True)
class ProfileRule:
    resource_type: str
    profile: str
    where: str | None = None
    why: str = ""


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[ProfileRule, ...] = ()
    source: str = ""

    @classmethod
    def load(cls, path: Path) -> RuleSet:
        """Read a rule set file; ValueError saying what is wrong and where."""
        try:
            document = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"validation rules {path}: cannot be read as JSON: {exc}") from exc
        raw = document.get("rules") if isinstance(document, dict) else None
        if not isinstance(raw, list):
            raise ValueError(f"validation rules {path}: expected an object with a 'rules' array")
        return cls(
            tuple(_rule(entry, f"{path}: rules[{i}]") for i, entry in enumerate(raw)), str(path)
        )

    def profiles_for(self, resource: dict[str, Any], condition: Condition) -> list[str]:
        """The profiles the rules require of this resource."""
        kind = resource.get("resourceType")
        found: list[str] = []
        for rule in self.rules:
            if rule.resource_type != kind or rule.profile in found:
                continue
            if rule.where is None or condition(rule.where, resource) is not False:
                found.append(rule.profile)
        return found

    def required_profiles(self) -> Sequence[tuple[str, str]]:
        """(resource type, profile) of every rule, to check the configuration at start-up."""
        return [(r.resource_type, r.profile) for r in self.rules]


def _rule(entry: object, where: str) -> ProfileRule:
    if not isinstance(entry, dict):
        raise ValueError(f"validation rules {where}: expected an object")
    kind, profile, condition = entry.get("resourceType"), entry.get("profile"), entry.get("where")
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"validation rules {where}.resourceType: a resource type is required")
    if not isinstance(profile, str) or not profile:
        raise ValueError(f"validation rules {where}.profile: a profile canonical URL is required")
    if condition is not None and not isinstance(condition, str):
        raise ValueError(f"validation rules {where}.where: expected a FHIRPath string")
    return ProfileRule(kind, profile, condition, str(entry.get("why", "")))
