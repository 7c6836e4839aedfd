"""Print a results line as Markdown: ``python -m bench.report [--index -1] [FILE]``.

Used to paste a run into docs/performance.md: the machine, the table of medians and ratios,
and every target with its measured figure.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.run import RESULTS, table


def render(record: dict[str, Any]) -> str:
    m = record["machine"]
    systems: list[str] = []
    for row in record["runs"]:
        if row["system"] not in systems:
            systems.append(row["system"])
    head = (
        f"Run of {record['time']} (commit {record['commit']}, {record['reps']} repetitions"
        f"{', quick' if record['quick'] else ''}): {m['cpus']} cores, {m['platform']}, "
        f"Python {m['python']}, PostgreSQL {m['postgres'] or '-'}."
        + (f" {record['note']}." if record.get("note") else "")
    )
    lines = [head, "", table(record["summary"], systems), ""]
    for t in record["targets"]:
        mark = {True: " — **met**", False: " — **not met**", None: " in this run"}[t["met"]]
        lines.append(f"- {t['target']}: {t['measured']}{mark}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.report")
    p.add_argument("file", nargs="?", type=Path, default=RESULTS)
    p.add_argument("--index", type=int, default=-1, help="which line (default: the last)")
    args = p.parse_args()
    lines = args.file.read_text(encoding="utf-8").splitlines()
    print(render(json.loads(lines[args.index])))


if __name__ == "__main__":
    main()
