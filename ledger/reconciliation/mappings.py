"""Each organisation's CSV layouts, one per bank, saved under a name; the presets (``cn_bank``, ``generic``) are
there for every organisation and cannot be overwritten."""

from __future__ import annotations

import dataclasses
import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.core.errors import InvalidInput, NotFound
from ledger.core.values import required_text
from ledger.db.models import StatementMapping
from ledger.db.types import utc_now
from ledger.reconciliation.statements import PRESETS, CsvMapping

FIELDS = [field.name for field in dataclasses.fields(CsvMapping) if field.name != "extra"]


def mapping_of(values: dict) -> CsvMapping:
    """A layout from its fields, each checked: the date column, and either an amount column or both a debit and a
    credit column (借方/贷方), are required."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(unknown)}", field=unknown[0])
    texts = {name: str(values.get(name, "") or "").strip()[:100] for name in FIELDS}
    required_text(texts["date"], "date", 100)
    if not texts["amount"] and not (texts["debit"] and texts["credit"]):
        raise InvalidInput("name the amount column, or both the debit and the credit columns", field="amount")
    if len(texts["delimiter"] or ",") != 1:
        raise InvalidInput("must be one character", field="delimiter")
    texts["delimiter"] = texts["delimiter"] or ","
    texts["currency"] = texts["currency"].upper()  # (none: the books' currency)
    return CsvMapping(**texts)


def save_mapping(session: Session, organisation_id: int, name: str, values: dict, updated_by: str) -> CsvMapping:
    name = required_text(name, "name", 60)
    if name in PRESETS:
        raise InvalidInput(f"{name} is a preset's name", field="name")
    mapping = mapping_of(values)
    text = json.dumps({field: getattr(mapping, field) for field in FIELDS}, ensure_ascii=False, sort_keys=True)
    row = session.get(StatementMapping, (organisation_id, name))
    if row is None:
        session.add(StatementMapping(organisation_id=organisation_id, name=name, mapping=text, updated_at=utc_now(),
                                     updated_by=updated_by))
    else:
        row.mapping, row.updated_at, row.updated_by = text, utc_now(), updated_by
    session.flush()
    return mapping


def get_mapping(session: Session, organisation_id: int, name: str) -> CsvMapping:
    if name in PRESETS:
        return PRESETS[name]
    row = session.get(StatementMapping, (organisation_id, name))
    if row is None:
        raise NotFound(f"no CSV layout is saved as {name}", field="mapping")
    return CsvMapping(**json.loads(row.mapping))


def list_mappings(session: Session, organisation_id: int) -> dict[str, CsvMapping]:
    saved = {row.name: CsvMapping(**json.loads(row.mapping)) for row in session.scalars(
        select(StatementMapping).where(StatementMapping.organisation_id == organisation_id)
        .order_by(StatementMapping.name))}
    return {**PRESETS, **saved}
