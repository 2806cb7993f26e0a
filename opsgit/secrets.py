"""Secret values, and their removal from everything opsgit shows or sends.

Attributes marked sensitive in a provider's schema are masked by name where plans are shown.
This module masks by value, which catches a secret wherever it travelled: the values of
variables marked sensitive (in `env.yaml`'s `sensitive:` list or a module variable's
`sensitive: true`), and credentials in opsgit's own environment (`GITHUB_TOKEN`,
`CONSUL_HTTP_TOKEN`, `AWS_SECRET_ACCESS_KEY`, and any variable whose name says token, secret,
password, passphrase or private key). Output, warnings, error messages, crash logs, commit
statuses, pull-request comments and history records pass through `redact()` before they leave.

Values shorter than `MIN_LENGTH` are not masked: replacing every `dev` in the output would make it
unreadable and hides nothing a short value could protect.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from opsgit import walk

MASK = "(sensitive value)"
MIN_LENGTH = 6
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|PRIVATE_KEY|CREDENTIAL|API_KEY)", re.IGNORECASE)
KNOWN_SECRETS = ("GITHUB_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN", "CONSUL_HTTP_TOKEN", "CONSUL_TOKEN",
                 "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "VAULT_TOKEN")


def is_secret_name(name: str) -> bool:
    return name in KNOWN_SECRETS or bool(SECRET_NAME.search(name))


class Redactor:
    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: Any) -> None:
        """Mask this value (and each string inside it) from now on, in each encoding it may
        travel in (see `encodings`)."""
        for text in _strings(value):
            if len(text) < MIN_LENGTH or text in self._values:
                continue
            with self._lock:
                self._values.update(form for form in encodings(text) if len(form) >= MIN_LENGTH)
                # Longest first, so that a secret containing another is masked whole.
                self._pattern = re.compile("|".join(re.escape(v) for v in sorted(self._values, key=len,
                                                                                    reverse=True)))

    def add_environment(self, environ: Mapping[str, str]) -> None:
        for name, value in environ.items():
            if is_secret_name(name):
                self.add(value)

    def redact(self, text: str) -> str:
        pattern = self._pattern
        return text if pattern is None or not text else pattern.sub(MASK, text)

    def redact_data(self, value: Any) -> Any:
        """The same structure with every string redacted (for JSON output and records)."""
        if self._pattern is None:
            return value

        def one(leaf: Any) -> Any:
            return self.redact(leaf) if isinstance(leaf, str) else leaf

        return walk.transform(value, one, key=one)


def encodings(text: str) -> set[str]:
    """The forms a secret takes on its way out: as it is, JSON-escaped (ASCII-only JSON writes
    `\\u00e9`), as Python's repr shows it, URL-encoded, and base64 (with and without padding, in
    both alphabets, and at each of the three alignments it can have inside a longer text)."""
    import base64
    import json
    from urllib.parse import quote, quote_plus

    raw = text.encode("utf-8")
    forms = {text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1], repr(text)[1:-1],
             quote(text, safe=""), quote_plus(text), quote(text)}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        encoded = encode(raw).decode("ascii")
        forms |= {encoded, encoded.rstrip("=")}
        # Inside a larger blob (user_data, a config file) the secret starts at any byte offset:
        # its bytes from the next 3-byte boundary on encode the same whatever surrounds them.
        for skip in (0, 1, 2):
            aligned = raw[skip:len(raw) - (len(raw) - skip) % 3]
            if len(aligned) >= 6:
                forms.add(encode(aligned).decode("ascii"))
    return forms


def _strings(value: Any) -> Iterable[str]:
    for leaf in walk.leaves(value):
        if isinstance(leaf, str):
            yield leaf
        elif isinstance(leaf, int | float) and not isinstance(leaf, bool):
            yield str(leaf)


SECRETS = Redactor()
SECRETS.add_environment(os.environ)


def register(value: Any) -> None:
    SECRETS.add(value)


def redact(text: str) -> str:
    return SECRETS.redact(text)


def redact_data(value: Any) -> Any:
    return SECRETS.redact_data(value)
