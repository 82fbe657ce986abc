"""Receipts (to come, issue 11): the register and its gap-free numbering, content per jurisdiction, PDFs,
verification and delivery. Imports ``ledger``; ``ledger`` never imports ``receipts``."""
