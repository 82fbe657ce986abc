"""The books: organisations and their funds and charts, entries, balances, periods, integrity (seals and
verify) and the bulk import."""
