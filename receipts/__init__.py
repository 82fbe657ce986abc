"""Receipts (issue 11): the register and its gap-free numbering (``register``), the amounts in Chinese capitals
(``numerals``), the PDF (``pdf``, ``documents``) and the verification token (``signing``). Imports ``ledger``;
``ledger`` never imports ``receipts``: it tells of gifts and refunds through ``ledger.giving.observers``, to which
``listen`` subscribes the register on a database (the application does, for its own)."""

from __future__ import annotations


def listen(database) -> None:
    from ledger.giving import observers
    from receipts import register

    observers.listen(database, observers.DONATION_RECORDED, register.receipt_on_recording)
    observers.listen(database, observers.REFUND_RECORDED, register.on_refund)
    observers.listen(database, observers.REFUND_CANCELLED, register.on_refund_cancelled)
