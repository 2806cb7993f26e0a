"""Values written into a YAML or JSON document by a template, kept apart from its text.

A module body and the Packer template are rendered as text and then parsed. A value with a quote,
a backslash, `: ` or a newline in it (a password, a description) would break the document around
it or change its shape, differently under each quoting the template chose. So each such value is
written as a placeholder word that reads the same under every quoting, and put back into the
parsed data: the value arrives exactly as it was, wherever the template put it.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

# What YAML or JSON would read differently from what it is, wherever it lands in the text: quotes,
# backslashes, control characters, `: ` and ` #`, a leading indicator, spaces at either end.
NEEDS_HOLDING = re.compile(r"[\"'\\\x00-\x1f\x7f\u2028\u2029]|: | #|:$|^[\s?:,\[\]{}#&*!|>%@`]|\s$")


# One per process, unguessable: a template cannot write a placeholder of its own.
_NONCE = secrets.token_hex(6)
_WORD = re.compile(f"opsgit{_NONCE}v([0-9]+)z")


class Verbatim(str):
    """Text meant as YAML or JSON (`to_json`, `to_yaml`, a macro's output, a `{% set %}` block):
    written into the document as it is, never held as a value."""


class Literals:
    """The values one render held, each behind a placeholder word."""

    def __init__(self) -> None:
        self._values: list[str] = []

    def hold(self, value: str) -> str:
        """The placeholder for `value` (what it costs is counted as written by the render bounds)."""
        self._values.append(value)
        return f"opsgit{_NONCE}v{len(self._values) - 1}z"

    def restore(self, data: Any) -> Any:
        """`data` parsed from the rendered text, every placeholder back to its value."""
        if not self._values:
            return data
        if isinstance(data, str):
            return _WORD.sub(lambda match: self._values[int(match.group(1))], data) if _NONCE in data else data
        if isinstance(data, dict):
            return {self.restore(key): self.restore(value) for key, value in data.items()}
        if isinstance(data, list):
            return [self.restore(item) for item in data]
        return data
