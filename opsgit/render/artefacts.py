"""Rendered artefacts as values, and the registry of the renderers that make them."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from opsgit.repo.values import Repo


@dataclass(frozen=True)
class Artefact:
    """One rendered thing: the files it consists of (paths relative to the build directory) and
    the repository files its rendering read."""

    kind: str
    name: str
    directory: str
    files: Mapping[str, bytes]
    reads: frozenset[str]
    # written beside the files but not part of the hash: where things came from (file:line), which
    # moves when a comment is added although nothing rendered changed
    annotations: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        digest = hashlib.sha256()
        for path in sorted(self.files):
            digest.update(path.encode() + b"\0" + hashlib.sha256(self.files[path]).digest())
        return digest.hexdigest()

    def record(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "directory": self.directory, "hash": self.hash,
                "files": sorted(self.files), "reads": sorted(self.reads)}


class Renderer(Protocol):
    """One kind of artefact."""

    # the artefact kind, as in the manifest and `--json`
    kind: str

    # names of the artefacts this repository has of this kind
    def names(self, repo: Repo) -> list[str]: ...

    # render one artefact by name; raises UserError on bad input
    def render(self, name: str) -> Artefact: ...


def stable_json(value: Any) -> bytes:
    """The one JSON encoding of rendered output: sorted keys, two-space indent, final newline.

    orjson writes the same bytes as `json.dumps(sort_keys=True, indent=2, ensure_ascii=False)`,
    thirty times faster; graphs are most of a render's output."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
                        | orjson.OPT_APPEND_NEWLINE)
