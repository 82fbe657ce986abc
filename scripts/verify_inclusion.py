#!/usr/bin/env python3
"""Checks, without FundLedger's server or code, that a donor's gifts are inside a published report.

Usage:
    python scripts/verify_inclusion.py <inclusion.json> [<report.json>]

``inclusion.json`` is what ``/verify/<receipt number>/inclusion.json?t=<token>`` gave the donor (the receipt's QR
code links to the page that offers it); ``report.json`` the report as published (``/reports/<org>/<number>.json``),
whose Merkle root, figures digest and gift count the proofs are then held to as well. Only Python's standard
library is used: the algorithm below is the one FundLedger documents (README, "Published reports"), written out
again on purpose so that this file can be read and run on its own.

For each gift: the leaf is SHA-256(0x00 || the fields joined by 0x1F); climbing the proof's path as RFC 9162
§2.1.3.2 says (interior nodes SHA-256(0x01 || left || right)) must give the report's root. Exit status 0 when every
proof holds (at least one), 1 otherwise: with a report named, each gift must be proven in it; without, a gift
that no published report holds yet is counted apart.
"""

from __future__ import annotations

import hashlib
import json
import sys


def leaf_hash(fields: list[str]) -> bytes:
    return hashlib.sha256(b"\x00" + "\x1f".join(fields).encode()).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_path(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes | None:
    """RFC 9162 §2.1.3.2; None when the path cannot belong to a tree of that size."""
    if not 0 <= index < size:
        return None
    fn, sn, result = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            result = node(sibling, result)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    return result if sn == 0 else None


def check_report(report: dict) -> list[str]:
    """What is wrong with the report file itself: its figures must hash to its digest and carry its root."""
    problems = []
    if hashlib.sha256(report["figures_canonical"].encode()).hexdigest() != report["figures_sha256"]:
        problems.append("the report's figures do not hash to its figures_sha256")
    figures = json.loads(report["figures_canonical"])
    if figures["gifts"]["merkle_root"] != report["merkle_root"] or figures["gifts"]["count"] != \
            report["donation_count"]:
        problems.append("the report's figures do not carry its Merkle root and gift count")
    return problems


def check_proof(fields: list[str], proof: dict, report: dict | None) -> str | None:
    """None when the proof holds, else why not."""
    leaf = leaf_hash(fields)
    if leaf.hex() != proof["leaf_hash"] or fields != proof["leaf_fields"]:
        return "the gift's fields do not give the proof's leaf"
    if report is not None and (proof["merkle_root"] != report["merkle_root"]
                               or proof["tree_size"] != report["donation_count"]):
        return f"the proof is for another tree than report {report['number']}'s"
    root = root_from_path(leaf, proof["index"], proof["tree_size"], [bytes.fromhex(h) for h in proof["path"]])
    if root is None or root.hex() != proof["merkle_root"]:
        return "the path does not lead to the report's Merkle root"
    return None


def main(arguments: list[str]) -> int:
    if len(arguments) not in (1, 2):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    with open(arguments[0], encoding="utf-8") as file:
        inclusion = json.load(file)
    report = None
    if len(arguments) == 2:
        with open(arguments[1], encoding="utf-8") as file:
            report = json.load(file)
        problems = check_report(report)
        for problem in problems:
            print(f"REPORT: {problem}")
        if problems:
            return 1
    held, failed, waiting = 0, 0, 0
    for gift in inclusion["gifts"]:
        proofs = [proof for proof in gift["proofs"] if report is None or proof["report_id"] == report["number"]]
        if not proofs and report is None:
            waiting += 1
            print(f"gift {gift['donation_id']}: no proof yet (no published report holds its date)")
        elif not proofs:
            failed += 1
            print(f"gift {gift['donation_id']}: NOT PROVEN for report {report['number']}: the file has no proof in it")
        for proof in proofs:
            problem = check_proof(gift["leaf_fields"], proof, report)
            if problem is None:
                held += 1
                print(f"gift {gift['donation_id']}: included in report {proof['report_id']} "
                      f"(leaf {proof['index'] + 1} of {proof['tree_size']}, root {proof['merkle_root']})")
            else:
                failed += 1
                print(f"gift {gift['donation_id']}: NOT PROVEN for report {proof['report_id']}: {problem}")
    print(f"{held} proof(s) hold, {failed} failed" + (f", {waiting} gift(s) in no report yet" if waiting else ""))
    return 0 if held and not failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
