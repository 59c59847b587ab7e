"""Barcodes: classification, check digits, the stored form, and the client's copy of the rules."""

from __future__ import annotations

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from storekeeper.catalog import barcodes
from storekeeper.catalog.barcodes import Barcode, InvalidBarcode, check_digit, normalise, parse
from storekeeper_client.replica import barcode_lookup_form

# Derandomized, so a failure found in CI is the same failure on every machine.
PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)

GTIN_LENGTHS = (8, 12, 13)
digits = st.sampled_from("0123456789")
whitespace = st.text(alphabet=barcodes.WHITESPACE, max_size=3)


@st.composite
def gtins(draw: st.DrawFn, lengths: tuple[int, ...] = GTIN_LENGTHS) -> str:
    """A GTIN with a correct check digit."""
    length = draw(st.sampled_from(lengths))
    body = draw(st.text(alphabet="0123456789", min_size=length - 1, max_size=length - 1))
    return body + check_digit(body)


printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


@st.composite
def code128s(draw: st.DrawFn) -> str:
    """A Code 128 as stored: printable ASCII, no surrounding space, not shaped like a GTIN."""
    text = draw(st.text(alphabet=printable, min_size=1, max_size=barcodes.MAX_LENGTH))
    assume(text == text.strip(" ") and not barcodes.is_gtin_shape(text))
    return text


valid_codes = st.one_of(gtins(), code128s())


# --- known codes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4006381333931", Barcode("4006381333931", "ean13")),
        ("036000291452", Barcode("036000291452", "upca")),
        ("0036000291452", Barcode("036000291452", "upca")),
        ("96385074", Barcode("96385074", "ean8")),
        (" 4006381333931\r\n", Barcode("4006381333931", "ean13")),
        ("SHELF-12 b", Barcode("SHELF-12 b", "code128")),
        ("12345", Barcode("12345", "code128")),
        ("40063813339310", Barcode("40063813339310", "code128")),  # 14 digits: not a GTIN here
        ("x" * 48, Barcode("x" * 48, "code128")),
        ("~!{}", Barcode("~!{}", "code128")),
    ],
)
def test_known_codes_are_classified_and_stored_in_one_form(text: str, expected: Barcode) -> None:
    assert parse(text) == expected


def test_a_problem_is_described_with_its_code_shortened_if_long() -> None:
    def described(text: str) -> str:
        with pytest.raises(InvalidBarcode) as caught:
            parse(text)
        return barcodes.describe(text, caught.value)

    assert described(" 4006381333932\n").startswith("4006381333932: not a valid EAN-13")
    assert described("y" * 49).startswith("yyyyyyyyyyyyyyyyyyyy…: too long")
    assert described(" ") == "a barcode cannot be blank"


def test_labels_name_the_kinds_for_people() -> None:
    assert [parse(c).label for c in ("4006381333931", "036000291452", "96385074", "A1")] == [
        "EAN-13",
        "UPC-A",
        "EAN-8",
        "Code 128",
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("4006381333932", "not a valid EAN-13: its check digit (the last) should be 1, not 2"),
        ("036000291453", "not a valid UPC-A: its check digit (the last) should be 2, not 3"),
        ("0036000291453", "not a valid EAN-13: its check digit (the last) should be 2, not 3"),
        ("96385070", "not a valid EAN-8: its check digit (the last) should be 4, not 0"),
        ("", "cannot be blank"),
        (" \t\r\n", "cannot be blank"),
        ("x" * 49, "too long: a barcode has at most 48 characters, this one 49"),
        ("käse", "character 2 ('ä') cannot be in a barcode"),
        ("a\x00b", "character 2 ('\\x00') cannot"),
        ("a\tb", "character 2 ('\\t') cannot"),
        ("4006381333931\u00a0", "character 14 ('\\xa0') cannot"),
        ("٤٠٠٦٣٨١٣٣٣٩٣١", "character 1"),  # Arabic-Indic digits are not ASCII digits
    ],
)
def test_invalid_codes_say_why_in_words(text: str, reason: str) -> None:
    with pytest.raises(InvalidBarcode) as caught:
        parse(text)
    assert reason in str(caught.value)
    assert not barcodes.is_valid(text)


# --- properties --------------------------------------------------------------------------------


@PROPERTY
@given(gtins())
@example("4006381333931")
def test_a_gtin_with_its_check_digit_is_accepted_as_its_kind(code: str) -> None:
    parsed = parse(code)

    if len(code) == 13 and code.startswith("0"):
        assert parsed == Barcode(code[1:], "upca")
    else:
        assert parsed == Barcode(code, {13: "ean13", 12: "upca", 8: "ean8"}[len(code)])


@PROPERTY
@given(gtins(), st.data())
def test_every_single_wrong_digit_of_a_gtin_is_caught(code: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(code) - 1))
    wrong = data.draw(digits.filter(lambda d: d != code[position]))
    misread = code[:position] + wrong + code[position + 1 :]

    with pytest.raises(InvalidBarcode, match="check digit"):
        parse(misread)


@PROPERTY
@given(gtins(), st.data())
def test_swapping_two_neighbouring_digits_is_caught_unless_they_differ_by_5(
    code: str, data: st.DataObject
) -> None:
    position = data.draw(st.integers(0, len(code) - 2))
    a, b = code[position], code[position + 1]
    assume(a != b)
    swapped = code[:position] + b + a + code[position + 2 :]

    assert barcodes.is_valid(swapped) == (abs(int(a) - int(b)) == 5)


@PROPERTY
@given(gtins(lengths=(12,)))
def test_a_upc_a_and_its_ean_13_with_a_leading_zero_are_one_code(upc: str) -> None:
    assert normalise("0" + upc) == normalise(upc) == upc
    assert parse("0" + upc).kind == "upca"


@PROPERTY
@given(valid_codes, whitespace, whitespace)
def test_the_stored_form_is_stable_and_ignores_surrounding_whitespace(
    code: str, before: str, after: str
) -> None:
    stored = normalise(code)

    assert normalise(before + code + after) == stored
    assert normalise(stored) == stored
    assert parse(stored).kind == parse(code).kind
    assert len(stored) <= barcodes.MAX_LENGTH


@PROPERTY
@given(code128s())
def test_printable_ascii_that_is_not_a_gtin_is_a_code_128_kept_as_it_is(code: str) -> None:
    assert parse(code) == Barcode(code, "code128")


@PROPERTY
@given(st.text(max_size=60))
@example("0" * 13)
@example("\x1d0104006381333931")
def test_any_text_is_either_a_valid_code_or_refused_with_a_reason(text: str) -> None:
    try:
        parsed = parse(text)
    except InvalidBarcode as exc:
        assert str(exc)
        return
    assert parsed.code == text.strip(barcodes.WHITESPACE).removeprefix("0") or (
        parsed.code == text.strip(barcodes.WHITESPACE)
    )
    assert all(" " <= char <= "~" for char in parsed.code)


# --- the client's copy -------------------------------------------------------------------------


@PROPERTY
@given(valid_codes, whitespace, whitespace)
@example("0036000291452", "", "\n")
def test_the_clients_lookup_form_of_a_valid_code_is_the_servers_stored_form(
    code: str, before: str, after: str
) -> None:
    assert barcode_lookup_form(before + code + after) == normalise(code)


@PROPERTY
@given(st.text(max_size=60))
def test_the_clients_lookup_form_of_an_invalid_code_is_no_stored_form(text: str) -> None:
    assume(not barcodes.is_valid(text))

    key = barcode_lookup_form(text)

    assert key is None or not barcodes.is_valid(key) or normalise(key) != key
