"""One rule for the free text people type (names, drugs, reasons, notes, user names): plain
text. No control characters (NUL ends strings in PostgreSQL and in C; the others are invisible)
and no characters that change how the text around them is shown (bidi overrides and isolates,
zero-width characters, the byte-order mark), with which "Smith" can be made to display as a
different name. Pure; used by the request schemas and the form parsers."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field

# Directional formatting (LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI, PDI), the marks (LRM, RLM,
# ALM), zero-width space/joiners, word joiner, and the BOM / zero-width no-break space.
_INVISIBLE = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    "\u200e\u200f\u061c\u200b\u200c\u200d\u2060\ufeff"
)
_LINE_BREAKS = frozenset("\n\r\t")


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why `value` is not plain text, or None. `multiline` allows line breaks and tabs."""
    for index, char in enumerate(value):
        if multiline and char in _LINE_BREAKS:
            continue
        if char in _INVISIBLE or unicodedata.category(char) in ("Cc", "Cs"):
            name = unicodedata.name(char, "control character")
            return f"contains U+{ord(char):04X} ({name.lower()}) at position {index + 1}"
    return None


def plain_line(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(f"must be plain text on one line: it {problem}")
    return value


def plain_text(value: str) -> str:
    problem = text_problem(value, multiline=True)
    if problem:
        raise ValueError(f"must be plain text: it {problem}")
    return value


# The same rule as a JSON Schema pattern, so that the API's contract states it. (Lone surrogates,
# also refused, cannot be written in UTF-8 JSON at all.)
_HIDDEN = "\\u007f-\\u009f\\u202a-\\u202e\\u2066-\\u2069\\u200b-\\u200f\\u061c\\u2060\\ufeff"
LINE_PATTERN = f"^[^\\u0000-\\u001f{_HIDDEN}]*$"
TEXT_PATTERN = f"^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f{_HIDDEN}]*$"

# For pydantic fields: `name: PlainLine = Field(max_length=...)`.
PlainLine = Annotated[
    str, AfterValidator(plain_line), Field(json_schema_extra={"pattern": LINE_PATTERN})
]
PlainText = Annotated[
    str, AfterValidator(plain_text), Field(json_schema_extra={"pattern": TEXT_PATTERN})
]
