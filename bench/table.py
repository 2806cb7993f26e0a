"""The Markdown table every benchmark prints for docs/benchmarks.md."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def print_table(rows: Iterable[Sequence[str]]) -> None:
    print("| measured | figure | target |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
