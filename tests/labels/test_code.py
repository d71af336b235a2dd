"""A bag label's code and its check character (ISO 7064 MOD 37-2): every single-character
change and every transposition of two characters is caught before anything is looked up."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.labels.code import (
    ALPHABET,
    LENGTH,
    MAX_BAG,
    MAX_SESSION,
    CodeError,
    LabelCode,
    check_character,
    is_valid,
    new_code,
    parse,
)

codes = st.builds(
    LabelCode,
    session_id=st.integers(1, MAX_SESSION),
    bag=st.integers(1, MAX_BAG),
    label_id=st.text(ALPHABET, min_size=8, max_size=8),
)
# What a slip can put in a code: any character a keyboard or a misread gives, not only ours.
typed = st.characters(codec="ascii", exclude_categories=("Cc",))


def test_the_standard_example_of_mod_37_2() -> None:
    assert check_character("G123489654321") == "Y"  # ISO 7064's worked example


@given(codes)
def test_a_code_reads_back_as_itself_printed_or_plain(code: LabelCode) -> None:
    assert len(code.text) == LENGTH and is_valid(code.text)
    assert parse(code.text) == code
    assert parse(code.printed) == code
    assert parse(" " + code.printed.lower() + " ") == code


@given(codes, st.data())
def test_every_single_character_change_is_caught(code: LabelCode, data: st.DataObject) -> None:
    text = code.text
    at = data.draw(st.integers(0, len(text) - 1))
    other = data.draw(typed.filter(lambda c: c.upper() != text[at] and c not in "- "))
    changed = text[:at] + other + text[at + 1 :]
    with pytest.raises(CodeError):
        parse(changed)


@given(codes, st.data())
def test_every_transposition_is_caught(code: LabelCode, data: st.DataObject) -> None:
    text = code.text
    i = data.draw(st.integers(0, len(text) - 2))
    j = data.draw(st.integers(i + 1, len(text) - 1))
    if text[i] == text[j]:
        return  # swapping two equal characters changes nothing
    swapped = list(text)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    with pytest.raises(CodeError):
        parse("".join(swapped))


def test_every_adjacent_transposition_of_a_sample_code_exhaustively() -> None:
    code = LabelCode(14, 3, "K7Q2M9XA")
    text = code.text
    for i in range(len(text) - 1):
        if text[i] != text[i + 1]:
            swapped = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
            with pytest.raises(CodeError):
                parse(swapped)


@pytest.mark.parametrize(
    ("scanned", "why"),
    [
        ("", "does not begin with SW"),
        ("MRN-000123", "does not begin with SW"),
        ("SW00000014", "21 characters"),
        ("SW0000001403K7Q2M9X!Q", "only digits and letters"),
        ("SW0000000003K7Q2M9XA" + check_character("SW0000000003K7Q2M9XA"), "no session"),
    ],
)
def test_what_is_not_a_label_is_named(scanned: str, why: str) -> None:
    with pytest.raises(CodeError, match=why):
        parse(scanned)


def test_new_codes_are_random_and_bounded() -> None:
    assert len({new_code(1, 1).label_id for _ in range(200)}) == 200
    with pytest.raises(CodeError):
        new_code(MAX_SESSION + 1, 1)
    with pytest.raises(CodeError):
        new_code(1, 0)
