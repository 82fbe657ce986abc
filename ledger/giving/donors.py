"""Donors: who gives. Their contact details and tax ids are personal data, kept only for receipts and the
law, and shown only to the organisation's own people; in public a name appears only with consent."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.books.organisations import get_organisation
from ledger.core.errors import InvalidInput
from ledger.core.values import one_of, required_text
from ledger.core.vocabulary import DonorKind
from ledger.db.listing import Page, get_owned, keyset_page
from ledger.db.models import Donor
from ledger.db.types import utc_now

CONTACT_LIMITS = {"email": 320, "phone": 40, "address": 500, "tax_id": 40}


@dataclass(frozen=True, slots=True)
class Contact:
    """A donor's personal data, each part optional: kept for receipts and the law, never shown in public."""

    email: str | None = None
    phone: str | None = None
    address: str | None = None
    tax_id: str | None = None

    def checked(self) -> dict[str, str | None]:
        """The parts as the ledger keeps them: blanks as None, each within its length."""
        parts = {}
        for name, limit in CONTACT_LIMITS.items():
            value = getattr(self, name) or None
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                raise InvalidInput(f"must be text of at most {limit} characters", field=name)
            parts[name] = value
        if parts["email"] is not None and "@" not in parts["email"]:
            raise InvalidInput("must be an email address", field="email")
        return parts


def create_donor(session: Session, organisation_id: int, *, kind: str, name: str, created_by: str,
                 contact: Contact = Contact(), public_name_consent: bool = False) -> Donor:
    """Records a donor of the organisation."""
    get_organisation(session, organisation_id)
    donor = Donor(organisation_id=organisation_id, kind=one_of(kind, DonorKind, "kind"),
                  name=required_text(name, "name", 200), public_name_consent=public_name_consent is True,
                  created_at=utc_now(), created_by=created_by, **contact.checked())
    session.add(donor)
    session.flush()
    return donor


def get_donor(session: Session, organisation_id: int, donor_id: int) -> Donor:
    return get_owned(session, Donor, organisation_id, donor_id, "donor")


def list_donors(session: Session, organisation_id: int, *, after: int | None, limit: int) -> Page:
    return keyset_page(session, select(Donor).where(Donor.organisation_id == organisation_id), Donor.id, after, limit)


def public_name(donor: Donor | None) -> str:
    """The name as the public may see it: whole with consent, else the first character and a star (张*);
    an organisation's name is public either way, an anonymous gift says so."""
    if donor is None:
        return "匿名 anonymous"
    if donor.public_name_consent or donor.kind == DonorKind.ORGANISATION:
        return donor.name
    return donor.name[:1] + "*"
