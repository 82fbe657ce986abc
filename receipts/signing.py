"""A receipt's verification token: an Ed25519 signature, by the organisation's receipt key, over what the receipt
says (its organisation, number, amount, currency and date).

The token is what makes ``/verify/<number>?t=<token>`` answer: without it a number shows nothing, so numbers cannot
be enumerated, and anyone holding the organisation's published public key can check a receipt offline
(``scripts/verify_receipt.py``). Each organisation's key is derived (HKDF-SHA256) from the deployment's one receipt
signing secret and the organisation's id: nothing to store, and a key cannot sign another organisation's receipts.
"""

from __future__ import annotations

import base64
import datetime as dt

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

VERSION = "FundLedger receipt v1"


def signed_text(organisation_id: int, number: str, amount_minor: int, currency: str, issued_on: dt.date) -> bytes:
    """What the token signs, one field a line (documented for offline checkers)."""
    return "\n".join((VERSION, str(organisation_id), number, str(amount_minor), currency,
                      issued_on.isoformat())).encode()


def organisation_key(secret: bytes, organisation_id: int) -> Ed25519PrivateKey:
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"fundledger receipts",
                info=f"organisation {organisation_id}".encode()).derive(secret)
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_text(secret: bytes, organisation_id: int) -> str:
    """The organisation's public key, as published: the raw 32 bytes in unpadded base64url."""
    raw = organisation_key(secret, organisation_id).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return _text(raw)


def token(secret: bytes, organisation_id: int, number: str, amount_minor: int, currency: str,
          issued_on: dt.date) -> str:
    signature = organisation_key(secret, organisation_id).sign(
        signed_text(organisation_id, number, amount_minor, currency, issued_on))
    return _text(signature)


def token_holds(public_key: str, token_text: str, signed: bytes) -> bool:
    """Whether the token is the key's signature over ``signed``; a malformed token or key is simply not."""
    try:
        key = Ed25519PublicKey.from_public_bytes(_bytes(public_key))
        key.verify(_bytes(token_text), signed)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _bytes(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
