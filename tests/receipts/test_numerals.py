"""Chinese capital numerals (大写): worked examples from the rules, and properties over any amount: the words read
back to the same amount (by a reader written here from the rules, not from the formatter), use only the allowed
characters, and never say 零 twice in a row or at a group's end."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from receipts.numerals import capital_amount

DIGIT_VALUES = {character: value for value, character in enumerate("零壹贰叁肆伍陆柒捌玖")}
PLACE_VALUES = {"拾": 10, "佰": 100, "仟": 1000}


@pytest.mark.parametrize(("fen", "words"), [
    (0, "零元整"),
    (5, "伍分"),
    (50, "伍角"),
    (100, "壹元整"),
    (105, "壹元零伍分"),
    (150, "壹元伍角"),
    (10_000, "壹佰元整"),
    (1_234_567, "壹万贰仟叁佰肆拾伍元陆角柒分"),
    (100_000_000, "壹佰万元整"),
    (100_010_00, "壹拾万零壹拾元整"),
    (1_000_000_000_100, "壹佰亿零壹元整"),
    (10_100_000_000, "壹亿零壹佰万元整"),
    (10_010_000_000, "壹亿零壹拾万元整"),
    (100_010_000_000_000, "壹万亿零壹亿元整"),
    (1_000_000_000_000, "壹佰亿元整"),
    (10_005_000, "壹拾万零伍拾元整"),
    (101_000_000, "壹佰零壹万元整"),
    (600_000_090, "陆佰万元玖角"),
])
def test_worked_examples(fen, words):
    assert capital_amount(fen) == words


def read_back(words: str) -> int:
    """The amount the words say, read by the rules (groups 亿, 万; places 仟佰拾; 元角分)."""
    yuan_words, _, rest = words.partition("元")
    if not _:
        yuan_words, rest = "", words
    fen = 0
    jiao = re.search(r"(.)角", rest)
    cents = re.search(r"(.)分", rest)
    fen += DIGIT_VALUES[jiao[1]] * 10 if jiao else 0
    fen += DIGIT_VALUES[cents[1]] if cents else 0
    return _read_yuan(yuan_words) * 100 + fen


def _read_yuan(words: str) -> int:
    total = 0
    words = words.replace("万亿", "兆")  # (the group of 10^12, written with two characters)
    for unit, scale in (("兆", 10 ** 12), ("亿", 10 ** 8), ("万", 10 ** 4)):
        if unit in words:
            head, words = words.split(unit, 1)
            total += _read_yuan(head) * scale
    section, digit = 0, 0
    for character in words:
        if character in DIGIT_VALUES:
            digit = DIGIT_VALUES[character]
        elif character in PLACE_VALUES:
            section += digit * PLACE_VALUES[character]
            digit = 0
    return total + section + digit


@given(st.integers(min_value=0, max_value=10 ** 15))
def test_the_words_read_back_to_the_amount(fen):
    assert read_back(capital_amount(fen)) == fen


@given(st.integers(min_value=0, max_value=10 ** 15))
def test_the_words_use_only_the_capitals_and_say_zero_once_and_never_before_a_unit(fen):
    words = capital_amount(fen)
    if fen == 0:
        assert words == "零元整"
        return
    assert re.fullmatch(r"[零壹贰叁肆伍陆柒捌玖拾佰仟万亿元角分整]+", words)
    assert "零零" not in words and not re.search(r"零[拾佰仟万亿元角]", words)
    assert words.endswith(("整", "分", "角"))
    assert words.endswith("整") == (fen % 100 == 0)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "100", 10 ** 18])
def test_anything_but_whole_fen_within_range_is_refused(bad):
    with pytest.raises(ValueError):
        capital_amount(bad)
