"""A strict reading of the authorization pages with :mod:`html.parser`: balanced tags, unique
ids, a label for every control, legends on fieldsets, live references, and what each form
would submit — the checks a browser and a screen reader rely on, without a browser."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
    | {"track", "wbr"}
)


@dataclass
class Control:
    tag: str
    attrs: dict[str, str | None]
    form: int | None

    def get(self, name: str) -> str | None:
        return self.attrs.get(name)

    def has(self, name: str) -> bool:
        return name in self.attrs


@dataclass
class Form:
    attrs: dict[str, str | None]
    controls: list[Control] = field(default_factory=list)

    def submitted(self) -> list[tuple[str, str]]:
        """The fields a browser sends without any user change (buttons excluded)."""
        fields = []
        for c in self.controls:
            name, kind = c.get("name"), c.get("type") or "text"
            if c.tag != "input" or name is None or c.has("disabled"):
                continue
            if kind in ("checkbox", "radio") and not c.has("checked"):
                continue
            fields.append((name, c.get("value") or ""))
        return fields

    def values(self, name: str) -> list[str]:
        return [v for n, v in self.submitted() if n == name]


@dataclass
class Page:
    lang: str | None = None
    title: str = ""
    h1: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    label_for: list[str] = field(default_factory=list)
    controls: list[Control] = field(default_factory=list)
    forms: list[Form] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)  # id -> role
    described_by: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    text: str = ""


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.stack: list[str] = []
        self.form: int | None = None
        self.capture: str | None = None
        self.after_fieldset = False
        self.doctype = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attr_list: list[tuple[str, str | None]]) -> None:
        page, attrs = self.page, dict(attr_list)
        page.tags.append(tag)
        if self.after_fieldset and tag != "legend":
            page.problems.append("a fieldset does not start with its legend")
        self.after_fieldset = tag == "fieldset"
        if "style" in attrs or tag == "script" or any(a.startswith("on") for a in attrs):
            page.problems.append(f"<{tag}> has script or inline style the policy would block")
        if (element_id := attrs.get("id")) is not None:
            page.ids.append(element_id)
            if role := attrs.get("role"):
                page.roles[element_id] = role
        if refs := attrs.get("aria-describedby"):
            page.described_by.extend(refs.split())
        if tag == "html":
            page.lang = attrs.get("lang")
        elif tag == "label":
            page.label_for.append(attrs.get("for") or "")
        elif tag == "form":
            if self.form is not None:
                page.problems.append("nested form")
            page.forms.append(Form(attrs))
            self.form = len(page.forms) - 1
        elif tag in ("input", "button", "select", "textarea"):
            control = Control(tag, attrs, self.form)
            page.controls.append(control)
            if self.form is not None:
                page.forms[self.form].controls.append(control)
        if tag in ("title", "h1"):
            self.capture = tag
            if tag == "h1":
                page.h1.append("")
        if attrs.get("role") == "alert":
            page.alerts.append(attrs.get("id") or "")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.page.problems.append(f"self-closing <{tag}/>")
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.page.problems.append(f"end tag for void <{tag}>")
            return
        if not self.stack or self.stack[-1] != tag:
            self.page.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else ''}>")
            return
        self.stack.pop()
        if tag == "form":
            self.form = None
        if tag == self.capture:
            self.capture = None

    def handle_data(self, data: str) -> None:
        self.page.text += data
        if self.capture == "title":
            self.page.title += data
        elif self.capture == "h1":
            self.page.h1[-1] += data


def read_page(html: str) -> Page:
    """Parses ``html`` and records every problem in ``page.problems``."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    page = reader.page
    if not reader.doctype:
        page.problems.append("no <!DOCTYPE html>")
    if reader.stack:
        page.problems.append(f"unclosed: {reader.stack}")
    duplicates = {i for i in page.ids if page.ids.count(i) > 1}
    if duplicates:
        page.problems.append(f"duplicate ids {sorted(duplicates)}")
    for ref in [*page.described_by, *page.label_for]:
        if ref not in page.ids:
            page.problems.append(f"reference to a missing id {ref!r}")
    for control in page.controls:
        if control.tag == "button" or control.get("type") == "hidden":
            continue
        if control.get("id") not in page.label_for:
            page.problems.append(f"<{control.tag} name={control.get('name')}> has no label")
    return page


def assert_accessible(html: str, lang: str) -> Page:
    """The structural checks every page must pass; returns the parsed page."""
    page = read_page(html)
    assert page.problems == []
    assert page.lang == lang
    assert page.title.strip()
    assert len(page.h1) == 1 and page.h1[0].strip()
    assert page.tags.count("main") == 1
    assert "script" not in page.tags
    return page
