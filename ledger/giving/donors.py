"""Donors: who gives. Their contact details and tax ids are personal data, kept only for receipts and the
law, and shown only to the organisation's own people; in public a name appears only with consent."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.books.organisations import get_organisation
from ledger.core.errors import InvalidInput, NotFound
from ledger.db.models import Donor

DONOR_KINDS = ("individual", "organisation")
_OPTIONAL_LIMITS = {"email": 320, "phone": 40, "address": 500, "tax_id": 40}


def create_donor(session: Session, organisation_id: int, *, kind: str, name: str, created_by: str,
                 public_name_consent: bool = False, **contact: str | None) -> Donor:
    """Records a donor. ``contact`` holds the optional personal data: email, phone, address, tax_id."""
    get_organisation(session, organisation_id)
    if kind not in DONOR_KINDS:
        raise InvalidInput(f"must be one of {', '.join(DONOR_KINDS)}", field="kind")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidInput("is required, at most 200 characters", field="name")
    for key, value in contact.items():
        if key not in _OPTIONAL_LIMITS:
            raise InvalidInput("is not a donor field", field=key)
        if value is not None and (not isinstance(value, str) or len(value) > _OPTIONAL_LIMITS[key]):
            raise InvalidInput(f"must be text of at most {_OPTIONAL_LIMITS[key]} characters", field=key)
    if contact.get("email") and "@" not in contact["email"]:
        raise InvalidInput("must be an email address", field="email")
    donor = Donor(organisation_id=organisation_id, kind=kind, name=name.strip(),
                  public_name_consent=bool(public_name_consent), created_at=dt.datetime.now(dt.UTC),
                  created_by=created_by, **{key: contact.get(key) or None for key in _OPTIONAL_LIMITS})
    session.add(donor)
    session.flush()
    return donor


def get_donor(session: Session, organisation_id: int, donor_id: int) -> Donor:
    donor = session.get(Donor, donor_id)
    if donor is None or donor.organisation_id != organisation_id:
        raise NotFound(f"donor {donor_id} does not exist", field="donor_id")
    return donor


def public_name(donor: Donor | None) -> str:
    """The name as the public may see it: whole with consent, else the first character and a star (张*);
    an organisation's name is public either way, an anonymous gift says so."""
    if donor is None:
        return "匿名 anonymous"
    if donor.public_name_consent or donor.kind == "organisation":
        return donor.name
    return donor.name[:1] + "*"


def list_donors(organisation_id: int):
    """The query for an organisation's donors, for keyset paging by id."""
    return select(Donor).where(Donor.organisation_id == organisation_id)
