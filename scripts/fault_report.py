"""Print build/fault-report.jsonl (written by `make test-faults`) as the table of docs/reliability.md,
summing the figures of each scenario."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "build/fault-report.jsonl")
    totals: dict[str, dict[str, object]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        total = totals.setdefault(row["scenario"], {"trials": 0, "faults": 0, "lost": 0, "note": row["note"]})
        for key in ("trials", "faults", "lost"):
            total[key] = int(total[key]) + int(row[key])  # type: ignore[call-overload]
        total["note"] = row["note"]
    print("| scenario | trials | faults injected | data lost | what held |")
    print("|---|---|---|---|---|")
    for scenario, total in totals.items():
        print(f"| {scenario} | {total['trials']} | {total['faults']} | {total['lost']} | {total['note']} |")


if __name__ == "__main__":
    main()
