"""Receipts of plugin creates, so a create is never made twice.

Before a provider plugin is asked to create an object, opsgit writes what it is creating
(`<name>.json`: lineage, address, type, provider, dependencies); the witness process writes the
provider's answer beside it (`<name>.bin`) before passing it on; once the object is in the state's
journal both go. If opsgit is killed in between, the provider still finishes and answers, and the
witness, which outlives opsgit, keeps the answer: the next run records the object from it instead
of creating a second one. A `.json` with no answer means the create's outcome is unknown (the
witness was killed too, with the machine): that run says so and names `opsgit import`.

The folder is the repository's `.opsgit/receipts/` (on the machine that applied: a run on
another machine does not see them).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Receipt:
    name: str
    record: Mapping[str, Any]  # lineage, address, type, provider, dependencies
    answer: bytes | None       # the provider's ApplyResourceChange response, if it came


class Receipts:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def intend(self, name: str, record: Mapping[str, Any]) -> None:
        """Say, durably, that the create `name` is about to be asked for."""
        self.folder.mkdir(parents=True, exist_ok=True)
        staged = self.folder / f".{name}.json.tmp"
        with open(staged, "w") as handle:
            json.dump(dict(record), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staged, self.folder / f"{name}.json")

    def settle(self, name: str) -> None:
        """The create `name` is in the journal (or failed with nothing made): forget it."""
        for suffix in (".bin", ".json"):
            with contextlib.suppress(FileNotFoundError):
                (self.folder / f"{name}{suffix}").unlink()

    def pending(self, lineage: str) -> Iterator[Receipt]:
        """The creates of the state `lineage` that a run began and did not record."""
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("*.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(record, dict) or record.get("lineage") != lineage:
                continue
            answer_path = path.with_suffix(".bin")
            answer = answer_path.read_bytes() if answer_path.exists() else None
            yield Receipt(path.stem, record, answer)
