"""The page checker itself catches the mistakes it is there for."""

from __future__ import annotations

import pytest

from tests.unit.auth.server.html_checks import read_page

HEAD = '<!DOCTYPE html><html lang="en"><head><title>t</title></head><body><main>'
TAIL = "</main></body></html>"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("<p><b>x</p></b>", "closes"),
        ("<div>", "unclosed"),
        ('<input id="a"><input id="a"><label for="a">x</label>', "duplicate ids"),
        ('<input id="a" name="n">', "has no label"),
        ('<label for="b">x</label>', "missing id"),
        ('<p aria-describedby="nope">x</p>', "missing id"),
        ("<fieldset><p>x</p></fieldset>", "legend"),
        ("<form><form></form></form>", "nested form"),
        ('<p style="color:red">x</p>', "inline style"),
        ('<p onclick="x()">x</p>', "script"),
        ("<br/>", "self-closing"),
    ],
)
def test_problems_are_reported(body: str, problem: str) -> None:
    problems = read_page(HEAD + body + TAIL).problems
    assert any(problem in p for p in problems), problems


def test_a_clean_page_has_no_problems() -> None:
    body = (
        '<form method="post"><fieldset><legend>L</legend><input type="checkbox" id="c" name="s" '
        'value="v" checked><label for="c">C</label><input type="checkbox" id="d" name="s" '
        'value="w"><label for="d">D</label></fieldset><input type="hidden" name="h" value="1">'
        '<button type="submit" name="decision" value="approve">OK</button></form>'
    )
    page = read_page(HEAD + body + TAIL)
    assert page.problems == []
    assert page.forms[0].submitted() == [("s", "v"), ("h", "1")]
