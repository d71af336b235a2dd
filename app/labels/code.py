"""What a bag label's barcode says, and the check character that catches a misread or a typing
slip (ISO 7064 MOD 37-2). Pure.

A code is 21 characters of QR's alphanumeric set, fixed width so that no slip can move a digit
from one field into the next: "SW", the session (8 digits), the bag (2 digits), a random label
id (8 characters of 0-9 A-Z) and the check character (0-9, A-Z or *). Printed for people in
groups, "SW-00000014-03-K7Q2M9XA-Q"; the groups' hyphens and spaces are ignored when it is read.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CHECK_ALPHABET = ALPHABET + "*"  # MOD 37-2: the check may be the 37th character
PREFIX = "SW"
SESSION_DIGITS = 8
BAG_DIGITS = 2
LABEL_ID_LENGTH = 8
LENGTH = len(PREFIX) + SESSION_DIGITS + BAG_DIGITS + LABEL_ID_LENGTH + 1
MAX_SESSION = 10**SESSION_DIGITS - 1
MAX_BAG = 10**BAG_DIGITS - 1
GROUP_SEPARATORS = "- "


class CodeError(ValueError):
    """Not a Stepwise bag label code; the message says why, in the words a nurse reads."""


@dataclass(frozen=True)
class LabelCode:
    session_id: int
    bag: int
    label_id: str

    @property
    def text(self) -> str:
        """The barcode's payload: the 20 characters and their check."""
        body = (
            f"{PREFIX}{self.session_id:0{SESSION_DIGITS}d}{self.bag:0{BAG_DIGITS}d}{self.label_id}"
        )
        return body + check_character(body)

    @property
    def printed(self) -> str:
        """The same code for people, in groups: SW-00000014-03-K7Q2M9XA-Q."""
        t = self.text
        cut = (2, 2 + SESSION_DIGITS, 2 + SESSION_DIGITS + BAG_DIGITS, LENGTH - 1)
        return "-".join(t[a:b] for a, b in zip((0, *cut), (*cut, LENGTH), strict=True))


def check_character(body: str) -> str:
    """ISO 7064 MOD 37-2 (a pure system, radix 2) over 0-9 A-Z: every single substitution and
    every transposition of two characters fewer than 36 places apart changes it."""
    total = 0
    for char in body:
        total = ((total + ALPHABET.index(char)) * 2) % 37
    return CHECK_ALPHABET[(38 - total) % 37]


def is_valid(text: str) -> bool:
    """The characters of a code, its check included, satisfy MOD 37-2."""
    total = 0
    for char in text[:-1]:
        total = ((total + ALPHABET.index(char)) * 2) % 37
    return (total + CHECK_ALPHABET.index(text[-1])) % 37 == 1


def new_code(session_id: int, bag: int) -> LabelCode:
    """A label's code with a fresh random id (41 bits: no two labels share one by chance)."""
    if not 1 <= session_id <= MAX_SESSION:
        raise CodeError(f"a label names sessions 1 to {MAX_SESSION}, not {session_id}")
    if not 1 <= bag <= MAX_BAG:
        raise CodeError(f"a label names bags 1 to {MAX_BAG}, not {bag}")
    label_id = "".join(secrets.choice(ALPHABET) for _ in range(LABEL_ID_LENGTH))
    return LabelCode(session_id, bag, label_id)


def parse(scanned: str) -> LabelCode:
    """A scanned or typed code, or a CodeError that says what is wrong with it."""
    text = "".join(c for c in scanned.strip().upper() if c not in GROUP_SEPARATORS)
    if not text.startswith(PREFIX):
        raise CodeError("this is not a Stepwise bag label (it does not begin with SW)")
    if len(text) != LENGTH:
        raise CodeError(
            f"a bag label's code has {LENGTH} characters; this one has {len(text)}: "
            "scan it again or type it as printed"
        )
    body, check = text[:-1], text[-1]
    if any(c not in ALPHABET for c in body) or check not in CHECK_ALPHABET:
        raise CodeError("a bag label's code has only digits and letters (and * last)")
    if not is_valid(text):
        raise CodeError(
            "the code's check character does not match: a misread or a typing slip; "
            "scan it again or type it as printed"
        )
    start = len(PREFIX)
    session_id = int(body[start : start + SESSION_DIGITS])
    bag = int(body[start + SESSION_DIGITS : start + SESSION_DIGITS + BAG_DIGITS])
    if session_id < 1 or bag < 1:
        raise CodeError("this code names no session or no bag")
    return LabelCode(session_id, bag, body[start + SESSION_DIGITS + BAG_DIGITS :])
