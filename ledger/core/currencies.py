"""ISO 4217: the currencies money can be booked in, and the decimal places of each one's minor unit.

The table is data, kept here so that the core imports only the standard library; it was generated from the
``iso4217`` package (the ISO 4217 maintenance agency's list), and ``tests/core/test_currencies.py`` compares it
with that package code by code, so a new edition of the list shows up as a failing test, not as a silent gap.
"""

from __future__ import annotations

# Two decimal places: the common case (CNY 12.34 is 1234 fen).
_TWO_PLACES = """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF CHE
    CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD
    HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK
    MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD
    RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH
    USD USN UYU UZS VED VES WST XAD XCD XCG YER ZAR ZMW ZWG
""".split()

# Every other currency with a minor unit, and its decimal places.
_OTHER_PLACES = {
    "BHD": 3, "BIF": 0, "CLF": 4, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0, "JOD": 3, "JPY": 0,
    "KMF": 0, "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0, "RWF": 0, "TND": 3, "UGX": 0, "UYI": 0,
    "UYW": 4, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0
}

# Funds, precious metals, special drawing rights and testing codes: ISO 4217 codes without a minor unit, which
# cannot carry money in a ledger of whole minor units.
NO_MINOR_UNIT = frozenset("""
    XAG XAU XBA XBB XBC XBD XDR XPD XPT XSU XTS XUA XXX
""".split())

EXPONENTS: dict[str, int] = {**dict.fromkeys(_TWO_PLACES, 2), **_OTHER_PLACES}
