"""The one free-text rule: plain text, nothing that hides or reorders what is shown."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from app.text import PlainLine, PlainText, text_problem


class Form(BaseModel):
    name: PlainLine
    note: PlainText = ""


@pytest.mark.parametrize(
    "value",
    ["a\x00b", "Smith\u202eetal", "Jo\u200bhn", "\ufeffDoe", "x\x1by", "a\u2066b\u2069", "a\nb"],
)
def test_hidden_and_control_characters_are_refused_on_one_line(value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Form(name=value)
    assert "plain text" in str(refused.value)


def test_plain_names_in_any_script_pass() -> None:
    for name in ("O'Brien-Šimić", "Nguyễn Văn An", "عبد الله", "山田 太郎", "Zoë Ünal"):
        assert Form(name=name).name == name
        assert text_problem(name) is None


def test_notes_may_have_line_breaks_but_not_nul() -> None:
    assert Form(name="a", note="line one\nline two\tend").note.count("\n") == 1
    with pytest.raises(ValidationError):
        Form(name="a", note="one\x00two")
    assert "U+0000" in text_problem("one\x00two", multiline=True)
