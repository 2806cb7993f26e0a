"""All user-facing printing: colour only on a terminal, NO_COLOR honoured."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from opsgit.secrets import redact, redact_data

COLOURS = {"green": "32", "yellow": "33", "red": "31", "bold": "1", "dim": "2", "cyan": "36"}


def use_colour(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def paint(text: str, colour: str, stream: TextIO | None = None) -> str:
    stream = stream or sys.stdout
    if not use_colour(stream):
        return text
    return f"\033[{COLOURS[colour]}m{text}\033[0m"


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`1 environment`, `2 environments`: a count with its noun in the right number."""
    return f"{count:,} {noun if count == 1 else many or noun + 's'}"


_WRITE = threading.Lock()
_SINKS: list[Callable[[str], None]] = []


def tee(sink: Callable[[str], None]) -> Callable[[], None]:
    """Give `sink` every line said from now on, masked (a run's log); returns what stops it."""
    with _WRITE:
        _SINKS.append(sink)

    def stop() -> None:
        with _WRITE:
            if sink in _SINKS:
                _SINKS.remove(sink)
    return stop


def say(text: str = "", stream: TextIO | None = None) -> None:
    # One write per line under a lock: apply reports from several threads at once.
    target = stream or sys.stdout
    masked = redact(text)
    with _WRITE:
        target.write(masked + "\n")
        target.flush()
        for sink in _SINKS:
            sink(masked)


def log(text: str) -> None:
    """A progress or diagnostic line for people, on stderr (stdout stays the command's output)."""
    say(text, sys.stderr)


def warn(text: str) -> None:
    say(f"{paint('warning:', 'yellow', sys.stderr)} {text}", sys.stderr)


def emit_json(value: Any, stream: TextIO | None = None) -> None:
    say(json.dumps(redact_data(value), indent=2, sort_keys=True), stream)
