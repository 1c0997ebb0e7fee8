"""References between the entries of a transaction (http://hl7.org/fhir/R4/bundle.html#references,
http.html#trules).

When a transaction is processed, each entry's fullUrl stands for the resource the entry creates
or updates; once its identity is known (a new id for a create, the matched id of a conditional
write), "all matching links in the bundle" are replaced "whether they are found in the resource
ids, resource references, elements of type uri, url, oid, uuid, and <a href="" & <img src="" in
the narrative", but not in elements of type canonical. Relative references inside an entry whose
fullUrl is absolute are resolved against that fullUrl's base first.

A conditional reference (``Patient?identifier=sys|val``) is a search: exactly one match replaces
it; none or several fail the transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from fhir_server.validation.references import (
    CONDITIONAL,
    ReferenceSite,
    parse_local,
    reference_sites,
)

#: Kinds whose values are replaced; ``canonical`` is not (bundle.html#references).
REPLACED_KINDS = frozenset({"Reference", "uri", "url", "oid", "uuid"})

_ABSOLUTE_RESOURCE_URL = re.compile(r"(.+)/[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}(/_history/.+)?")
_NARRATIVE_LINK = re.compile(r'(\s(?:href|src)\s*=\s*")([^"]*)(")')


def conditional_reference(value: str) -> tuple[str, str] | None:
    """``Patient?identifier=x`` → ("Patient", "identifier=x"); None for any other reference."""
    if parse_local(value) != CONDITIONAL:
        return None
    type_, _, query = value.partition("?")
    return type_, query


def base_of(full_url: str | None) -> str | None:
    """The base of an absolute RESTful fullUrl (``http://x/fhir/Patient/1`` → ``http://x/fhir``)."""
    if full_url is None or not full_url.startswith(("http://", "https://")):
        return None
    found = _ABSOLUTE_RESOURCE_URL.fullmatch(full_url)
    return found.group(1) if found else None


def linkable_sites(resource: dict[str, Any]) -> list[ReferenceSite]:
    """The elements whose values may be replaced, except the resource's own ``url`` (the
    canonical identity of a conformance resource is not a link), found in one walk: a caller
    that needs them several times (conditional references, rewriting, placeholders) passes
    the list to each."""
    own_url = f"{resource.get('resourceType')}.url"
    return [
        site
        for site in reference_sites(resource)
        if site.kind in REPLACED_KINDS and site.path != own_url
    ]


def conditional_references(
    resource: dict[str, Any], sites: list[ReferenceSite] | None = None
) -> list[tuple[str, ReferenceSite]]:
    """The conditional references of a resource, with the element each is found in
    (``sites``: its :func:`linkable_sites`, if the caller has them)."""
    return [
        (site.value, site)
        for site in (linkable_sites(resource) if sites is None else sites)
        if site.kind == "Reference" and conditional_reference(site.value) is not None
    ]


def placeholder_references(
    resource: dict[str, Any], sites: list[ReferenceSite] | None = None
) -> list[ReferenceSite]:
    """The Reference elements still written as a ``urn:`` (after :func:`rewrite`: unresolved).
    ``sites``: the resource's :func:`linkable_sites` taken before a :func:`rewrite`; the value
    each holds now is read from the resource."""
    if sites is None:
        return [
            site
            for site in reference_sites(resource)
            if site.kind == "Reference" and site.value.startswith("urn:")
        ]
    found = []
    for site in sites:
        if site.kind != "Reference":
            continue
        value = site.holder.get(site.key)  # a Reference site is never inside an array
        if isinstance(value, str) and value.startswith("urn:"):
            found.append(site if value == site.value else replace(site, value=value))
    return found


def rewrite(
    resource: dict[str, Any],
    full_url: str | None,
    mapping: dict[str, str],
    sites: list[ReferenceSite] | None = None,
) -> None:
    """Replace, in place, every link to a fullUrl (or resolved conditional reference) of
    ``mapping`` by the ``Type/id`` it stands for (``sites``: the resource's
    :func:`linkable_sites`, if the caller has them)."""
    if not mapping:
        return
    base = base_of(full_url)
    for site in linkable_sites(resource) if sites is None else sites:
        replacement = mapping.get(site.value)
        if replacement is None and base is not None and _relative(site):
            replacement = mapping.get(f"{base}/{site.value}")
        if replacement is None:
            continue
        if site.index is None:
            site.holder[site.key] = replacement
        else:
            site.holder[site.key][site.index] = replacement
    _rewrite_narratives(resource, mapping)


def _relative(site: ReferenceSite) -> bool:
    """A Reference written ``Type/id`` (or versioned): relative to its entry's base."""
    return site.kind == "Reference" and isinstance(parse_local(site.value), tuple)


def _rewrite_narratives(resource: dict[str, Any], mapping: dict[str, str]) -> None:
    for holder in _narratives(resource):
        div = holder.get("div")
        if isinstance(div, str) and ("href" in div or "src" in div):
            holder["div"] = _NARRATIVE_LINK.sub(
                lambda m: m.group(1) + mapping.get(m.group(2), m.group(2)) + m.group(3), div
            )


def _narratives(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    text = resource.get("text")
    if isinstance(text, dict):
        yield text
    for contained in resource.get("contained", ()) or ():
        if isinstance(contained, dict):
            yield from _narratives(contained)
