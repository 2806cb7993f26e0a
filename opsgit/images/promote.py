"""`--promote`: write a built image's id into `environments/<env>/images.yaml`.

The file is edited with ruamel.yaml's round trip, so its comments, order and quoting stay as the
team wrote them and the pull request shows exactly one changed line.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from opsgit.errors import ConfigError, UserError
from opsgit.repo.text import read_text

HEADER = ("# Images promoted to this environment, one per role: `invoke image --promote` rewrites a line\n"
          "# here, and the pull request that carries it rolls the environment forward.\n")


def promote(path: Path, relative: str, role: str, image_id: str) -> str | None:
    """Set `role: image_id`; returns the id it replaced (None when the role had none)."""
    yaml = YAML()  # round-trip
    yaml.preserve_quotes = True
    yaml.width = 4096
    try:
        text = read_text(path, relative)
    except FileNotFoundError:
        text = HEADER
    except OSError as error:
        raise UserError(f"cannot read {relative}: {error.strerror}") from None
    try:
        document = yaml.load(text)
    except YAMLError as error:
        raise ConfigError(f"invalid YAML: {error}", file=relative) from None
    prefix = ""
    if document is None:  # missing, empty or only comments: keep those comments above the first entry
        document, prefix = CommentedMap(), text if text.endswith("\n") or not text else text + "\n"
    if not isinstance(document, CommentedMap):
        raise ConfigError("images.yaml must be a mapping of role to image id", file=relative)
    previous = document.get(role)
    if previous == image_id:
        return str(previous)
    document[role] = image_id
    buffer = io.StringIO(prefix)
    buffer.seek(len(prefix))
    yaml.dump(document, buffer)
    _write_atomically(path, buffer.getvalue())
    return None if previous is None else str(previous)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
