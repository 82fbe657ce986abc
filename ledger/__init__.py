"""The ledger: the domain of FundLedger and its persistence. No Flask, no HTTP (DESIGN.md §5)."""
