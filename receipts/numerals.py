"""Amounts in Chinese capital numerals (大写), as a receipt or a cheque writes them so that no stroke can turn one
figure into another: ¥12,345.67 is 壹万贰仟叁佰肆拾伍元陆角柒分, ¥100.00 is 壹佰元整.

The rules are the People's Bank of China's for writing amounts (《支付结算办法》 and its annex on writing
figures): digits 零壹贰叁肆伍陆柒捌玖, places 拾佰仟 within each group of four, groups 万 and 亿; a run of zeros
inside the amount is one 零, none at a group's end; 元 after the yuan, then 角 and 分; 整 when there are no jiao and
no fen; a yuan amount followed by fen alone puts 零 between (壹元零伍分). Amounts are whole fen: never a float.
"""

from __future__ import annotations

DIGITS = "零壹贰叁肆伍陆柒捌玖"
PLACES = ("", "拾", "佰", "仟")
GROUPS = ("", "万", "亿", "万亿")  # 10^0, 10^4, 10^8, 10^12 yuan: past any fund's balance


def capital_amount(fen: int) -> str:
    """The amount of ``fen`` (a non-negative whole number of fen) in capital numerals."""
    if isinstance(fen, bool) or not isinstance(fen, int) or fen < 0:
        raise ValueError("an amount in capital numerals is a non-negative whole number of fen")
    yuan, jiao, cents = fen // 100, fen // 10 % 10, fen % 10
    if yuan >= 10 ** (4 * len(GROUPS)):
        raise ValueError("the amount is beyond the capital numerals' groups")
    words = _yuan(yuan) + "元" if yuan else ""
    if not jiao and not cents:
        return (words or "零元") + "整"
    if jiao:
        words += DIGITS[jiao] + "角"
    elif yuan:
        words += "零"  # (壹元零伍分: the missing jiao is said)
    if cents:
        words += DIGITS[cents] + "分"
    return words


def _yuan(yuan: int) -> str:
    groups = []
    while yuan:
        groups.append(yuan % 10_000)
        yuan //= 10_000
    words, zero_pending = "", False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            zero_pending = bool(words)
            continue
        if words and (zero_pending or group < 1000):
            words += "零"  # (a gap between this group and the last, or the group starts below its thousands)
        words += _group(group) + GROUPS[index]
        zero_pending = False
    return words


def _group(group: int) -> str:
    """A group of up to four digits (1–9999), its zeros inside said once and none at its end."""
    words, zero_pending = "", False
    for place in range(3, -1, -1):
        digit = group // 10 ** place % 10
        if digit == 0:
            zero_pending = bool(words)
            continue
        if zero_pending:
            words += "零"
        words += DIGITS[digit] + PLACES[place]
        zero_pending = False
    return words
