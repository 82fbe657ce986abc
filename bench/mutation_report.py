"""Prints the mutation score of the pure core after `mutmut run` (see `make mutation`): per module, how many
mutants the core's tests killed, how many survived, how many no test reached, and the survivors themselves."""

from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path

KILLED = {"killed", "timeout"}  # a mutant that makes the tests hang is caught too


def results() -> list[tuple[str, str]]:
    mutmut = Path(sys.executable).with_name("mutmut")
    output = subprocess.run([str(mutmut), "results", "--all", "true"], capture_output=True, text=True,
                            check=True).stdout
    rows = []
    for line in output.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name:
            rows.append((name, status))
    return rows


def main() -> None:
    rows = results()
    by_module: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for name, status in rows:
        by_module[name.split(".x")[0]][status] += 1
    print("| module | mutants | killed | survived | no test | score |")
    print("|---|---|---|---|---|---|")
    totals: collections.Counter = collections.Counter()
    for module, counts in sorted(by_module.items()):
        totals.update(counts)
        print(_row(module, counts))
    print(_row("**all of ledger/core**", totals))
    survivors = [name for name, status in rows if status == "survived"]
    print(f"\n{len(survivors)} survivors (`mutmut show <name>` prints each):")
    for name in survivors:
        print(f"  {name}")


def _row(module: str, counts: collections.Counter) -> str:
    total = sum(counts.values())
    killed = sum(counts[status] for status in KILLED)
    score = f"{100 * killed / total:.1f} %" if total else "-"
    return (f"| {module} | {total} | {killed} | {counts['survived']} | {counts['no tests']} | {score} |")


if __name__ == "__main__":
    main()
