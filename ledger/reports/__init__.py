"""Public figures (to come, issue 12): aggregates, published reports that cite the sealed chain, Merkle proofs and
the disclosure ratios."""
