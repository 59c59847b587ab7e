"""Product barcodes: what a code is, whether it is valid, and its one stored form.

A pure value module (standard library only). The kinds:

- **EAN-13** (GTIN-13): 13 digits, the last a check digit;
- **UPC-A** (GTIN-12): 12 digits, the last a check digit;
- **EAN-8** (GTIN-8): 8 digits, the last a check digit;
- **Code 128**: anything else of 1-48 printable ASCII characters (space to ``~``), such as a
  shop's own shelf codes. Case and inner spaces count: ``ab 1`` and ``AB 1`` are two codes.

Rules, in this order:

1. Surrounding ASCII whitespace is dropped (a scanner ends a code with Enter or Tab; a pasted
   code may carry spaces). Nothing inside a code is changed.
2. A code of exactly 8, 12 or 13 ASCII digits is a GTIN, never Code 128, and its check digit
   must be right (a misread or mistyped digit is refused rather than stored as a new code). A
   shop's own all-digit code of that length must therefore carry a GTIN check digit; other
   lengths, or any letter or sign, make it Code 128.
3. **A UPC-A and the EAN-13 made of it with a leading 0 are the same code** (GS1: both are the
   same GTIN, and a European scanner reads a UPC-A label as that EAN-13). The stored form is
   the 12-digit UPC-A: ``0036000291452`` is stored, found and reported as ``036000291452``.
   Every 13-digit code starting with 0 is thus stored as a UPC-A. The check digit is the same
   either way (a leading 0 weighs nothing).

``parse`` applies the rules and says in words what is wrong; the API, the console and the
demo data all go through it. The client library (``storekeeper.client``) carries a copy of
rules 1 and 3 for its offline lookup, tested against this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["ean13", "upca", "ean8", "code128"]

MAX_LENGTH = 48
"""The longest Code 128 accepted (what a label of normal size holds)."""
MAX_PER_PRODUCT = 20
"""The most barcodes one product may have."""

WHITESPACE = " \t\r\n\v\f"
"""What is stripped around a code (ASCII whitespace only)."""

LABELS: dict[Kind, str] = {
    "ean13": "EAN-13",
    "upca": "UPC-A",
    "ean8": "EAN-8",
    "code128": "Code 128",
}
_GTIN_KINDS: dict[int, Kind] = {13: "ean13", 12: "upca", 8: "ean8"}


class InvalidBarcode(ValueError):
    """Not a barcode this shop accepts; the message says why, in words (without the code,
    which the caller shows as it sees fit: ``describe``)."""


@dataclass(frozen=True, slots=True)
class Barcode:
    """A valid code in its stored form, and its kind."""

    code: str
    kind: Kind

    @property
    def label(self) -> str:
        """The kind for people: ``EAN-13``, ``UPC-A``, ``EAN-8`` or ``Code 128``."""
        return LABELS[self.kind]


def check_digit(digits: str) -> str:
    """The GS1 check digit of a GTIN's other digits (weights 3, 1, 3, … from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str(-total % 10)


def is_gtin_shape(text: str) -> bool:
    """Whether ``text`` (stripped) is 8, 12 or 13 ASCII digits: a GTIN, never Code 128."""
    return len(text) in _GTIN_KINDS and text.isascii() and text.isdigit()


def parse(text: str) -> Barcode:
    """``text`` classified, checked and in its stored form; ``InvalidBarcode`` says why not."""
    code = text.strip(WHITESPACE)
    if not code:
        raise InvalidBarcode("a barcode cannot be blank")
    if is_gtin_shape(code):
        kind = _GTIN_KINDS[len(code)]
        expected = check_digit(code[:-1])
        if code[-1] != expected:
            raise InvalidBarcode(
                f"not a valid {LABELS[kind]}: its check digit (the last) should be {expected}, "
                f"not {code[-1]}; a digit was misread or mistyped"
            )
        if kind == "ean13" and code.startswith("0"):
            return Barcode(code[1:], "upca")
        return Barcode(code, kind)
    if len(code) > MAX_LENGTH:
        raise InvalidBarcode(
            f"too long: a barcode has at most {MAX_LENGTH} characters, this one {len(code)}"
        )
    for position, char in enumerate(code, start=1):
        if not " " <= char <= "~":
            raise InvalidBarcode(
                f"character {position} ({char!r}) cannot be in a barcode: it holds ASCII "
                "letters, digits, spaces and signs only"
            )
    return Barcode(code, "code128")


def describe(text: str, problem: InvalidBarcode) -> str:
    """``problem`` with the code it is about, for people: ``4006381333932: not a valid …``."""
    shown = text.strip(WHITESPACE)
    if not shown:
        return str(problem)
    if len(shown) > 24:
        shown = shown[:20] + "…"
    return f"{shown}: {problem}"


def normalise(text: str) -> str:
    """The stored form of a valid code (``InvalidBarcode`` otherwise)."""
    return parse(text).code


def is_valid(text: str) -> bool:
    """Whether ``text`` is a barcode this shop accepts."""
    try:
        parse(text)
    except InvalidBarcode:
        return False
    return True


def kind_of(code: str) -> Kind:
    """The kind of a code in its stored form."""
    return parse(code).kind


def label_of(code: str) -> str:
    """The kind of a code in its stored form, for people (``EAN-13``)."""
    return parse(code).label
