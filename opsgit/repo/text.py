"""Repository files as text: UTF-8 without NUL bytes, or an error naming the file and line.

Every configuration file and template of a repository is read through here, so a stray byte
from another encoding or a binary file saved under a template's name is one clear error, never
a decoding traceback and never a NUL carried into a rendered document.
"""

from __future__ import annotations

from pathlib import Path

from opsgit.errors import ConfigError


def decode(data: bytes, file: str) -> str:
    """`data` as text, or a ConfigError at the line of the first byte that is not UTF-8 text."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ConfigError(f"not UTF-8 text: byte 0x{data[error.start]:02x} cannot be read", file=file, line=line,
                          hint="save the file as UTF-8, e.g. with iconv -f latin1 -t utf-8") from None
    nul = text.find("\0")
    if nul >= 0:
        raise ConfigError("a NUL byte in a text file", file=file, line=text.count("\n", 0, nul) + 1,
                          hint="remove it: configuration and templates are text, binary files belong elsewhere")
    return text


def read_text(path: Path, file: str) -> str:
    """The text of `path` (named `file` in errors); OSErrors are the caller's to word."""
    return decode(path.read_bytes(), file)
