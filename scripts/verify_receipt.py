#!/usr/bin/env python3
"""Checks a FundLedger receipt offline, without the server: is the token in its verification address the
organisation's signature over what the receipt says?

    python3 scripts/verify_receipt.py --key='<the organisation's public key>' --organisation 1 \\
        --amount 100.00 --currency CNY --date 2026-11-30 \\
        --url 'https://give.example.org/verify/R1-2026-000001?t=…'

The key is published by the organisation (``GET /api/v1/organisations/<id>/receipt-key``, and on every verification
page): 32 bytes of Ed25519 public key, base64url. The token signs these lines, in this order: ``FundLedger receipt
v1``, the organisation's id, the receipt number, the amount in minor units (fen, cents), the currency and the date
issued (YYYY-MM-DD). Needs only the ``cryptography`` package. Exits 0 when the receipt checks, 1 when it does not.
"""

from __future__ import annotations

import argparse
import base64
import sys
from decimal import Decimal
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MINOR_UNITS = {"JPY": 0, "KRW": 0}  # (the currencies a receipt may be in with no cents; every other has two)


def unpadded(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key", required=True, help="the organisation's public key (base64url)")
    parser.add_argument("--organisation", required=True, type=int, help="the organisation's id")
    parser.add_argument("--url", required=True, help="the receipt's verification address (its QR code)")
    parser.add_argument("--amount", required=True, help="the amount printed on the receipt, e.g. 100.00")
    parser.add_argument("--currency", required=True, help="e.g. CNY")
    parser.add_argument("--date", required=True, help="the date issued, YYYY-MM-DD")
    args = parser.parse_args()
    address = urlsplit(args.url)
    number = unquote(address.path.rstrip("/").rsplit("/", 1)[-1])
    token = (parse_qs(address.query).get("t") or [""])[0]
    minor = int(Decimal(args.amount).scaleb(MINOR_UNITS.get(args.currency.upper(), 2)))
    signed = "\n".join(("FundLedger receipt v1", str(args.organisation), number, str(minor),
                        args.currency.upper(), args.date)).encode()
    try:
        Ed25519PublicKey.from_public_bytes(unpadded(args.key)).verify(unpadded(token), signed)
    except (InvalidSignature, ValueError):
        print(f"receipt {number}: NOT VERIFIED (the token is not the organisation's signature over what it says)")
        return 1
    print(f"receipt {number}: verified ({args.amount} {args.currency.upper()}, issued {args.date})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
