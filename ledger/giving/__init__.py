"""Giving: donors, the gifts recorded in the books, and their refunds."""
