"""This checkout's write speed against an earlier revision's, the two interleaved in small rounds.

    .venv/bin/python bench/versus.py 88b50e5                      # cases a and d, PostgreSQL and SQLite
    .venv/bin/python bench/versus.py 88b50e5 --cases a,b,c,d --engines postgresql --rounds 24

Whole runs of ``bench/ledger_bench.py`` one after the other differ by up to 30 % on this 2-core machine, as its
speed drifts over minutes: a difference of a few per cent between two versions hides in that drift. Here each
version runs in a process of its own (the other one's code from a git worktree), each on a fresh database of its
own, and the two take turns at small rounds of the same case (ABBA order), so both meet the same moments of the
machine; the table gives each version's mean rate and the mean and median of the paired ratios. Each round is one
of ``bench/ledger_bench.py``'s cases at a smaller size. Nothing here is a timed test.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROUND_SIZES = {"a": 400, "b": 2_000, "c": 5_000, "d": 1_600}


def worker(root: str, engine: str, name: str, pg: str) -> None:
    """Serves rounds for the version at ``root``: reads ``case`` lines, prints entries per second for each."""
    sys.path.insert(0, root)
    import bench.ledger_bench as version  # that version's own bench, imported from its tree

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/{name}.sqlite3" if engine == "sqlite" else version.fresh_postgres(pg, name)
        bench = version.prepare(engine, url)
        version.case_a(bench, {"a": 300})
        version.settle(bench)
        print("ready", flush=True)
        for line in sys.stdin:
            case = line.strip()
            sizes = {**version.FULL, case: ROUND_SIZES[case]}
            print(getattr(version, f"case_{case}")(bench, sizes)["entries_per_s"], flush=True)
        bench.db.dispose()


def start(root: Path, engine: str, name: str, pg: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "versus.py"), "--worker", str(root), "--engine", engine, "--db", name,
         "--pg", pg], cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError(f"the worker for {root} did not start")
    return process


def rounds(processes: dict[str, subprocess.Popen], case: str, count: int) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {label: [] for label in processes}
    # One round unmeasured first, for a warm pool: a new connection's first ten gifts cost 2-15 ms each here (the
    # connection, then the one-gift statement planned afresh until psycopg prepares it).
    for index in range(-1, count):
        order = list(processes) if index % 4 in (0, 3) else list(processes)[::-1]  # ABBA
        for label in order:
            processes[label].stdin.write(f"{case}\n")
            processes[label].stdin.flush()
            rate = float(processes[label].stdout.readline())
            if index >= 0:
                rates[label].append(rate)
    return rates


def compare(revision: str, worktree: Path, case: str, engine: str, count: int, pg: str) -> list[str]:
    processes = {revision: start(worktree, engine, "versus_then", pg), "now": start(ROOT, engine, "versus_now", pg)}
    try:
        rates = rounds(processes, case, count)
    finally:
        for process in processes.values():
            process.stdin.close()
            process.wait()
    ratios = [now / then for now, then in zip(rates["now"], rates[revision], strict=True)]
    then_mean, now_mean = statistics.mean(rates[revision]), statistics.mean(rates["now"])
    return [f"({case}) {engine}", f"{then_mean:,.0f}", f"{now_mean:,.0f}", f"{statistics.mean(ratios):.3f}",
            f"{statistics.median(ratios):.3f}", f"{min(ratios):.2f}–{max(ratios):.2f}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", nargs="?", help="the git revision to compare this checkout with")
    parser.add_argument("--cases", default="a,d")
    parser.add_argument("--engines", default="postgresql,sqlite")
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.engine, args.db, args.pg)
        return 0
    if not args.revision:
        parser.error("name the revision to compare with, e.g. 88b50e5")
    with tempfile.TemporaryDirectory() as folder:
        worktree = Path(folder) / "then"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(worktree),
                        args.revision], check=True)
        try:
            lines = [compare(args.revision, worktree, case, engine, args.rounds, args.pg)
                     for case in args.cases.split(",") for engine in args.engines.split(",")]
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)], check=True)
    print(f"\n{args.rounds} rounds each, entries/s; ratio: now / {args.revision}, round by round\n")
    print(f"| case | {args.revision} | now | mean ratio | median ratio | range |")
    print("|---|---|---|---|---|---|")
    for line in lines:
        print("| " + " | ".join(line) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
