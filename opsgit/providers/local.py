"""`local_file`: a file on the machine running opsgit."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opsgit.providers.base import Field, ReadEach, Schema


class LocalFile(ReadEach):
    schema = Schema({
        "filename": Field(required=True, force_new=True),
        "content": Field(required=True, force_new=True),
        "file_permission": Field(force_new=True),
        "sensitive_content": Field(sensitive=True, force_new=True),
        "id": Field(computed=True),
    })

    def read(self, resource_id: str, attributes: Mapping[str, Any]) -> dict[str, Any] | None:
        path = Path(attributes["filename"])
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            return None
        if hashlib.sha1(content).hexdigest() != resource_id:
            return {**attributes, "content": content.decode("utf-8", errors="replace")}
        return dict(attributes)

    def create(self, config: Mapping[str, Any], token: str) -> tuple[str, dict[str, Any]]:
        path = Path(config["filename"])
        content = str(config.get("content", ""))
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(content)
        os.chmod(temporary, int(str(config.get("file_permission", "0644")), 8))
        os.replace(temporary, path)
        resource_id = hashlib.sha1(content.encode()).hexdigest()
        return resource_id, {**config, "id": resource_id}

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        return self.create(config, "")[1]

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        Path(attributes["filename"]).unlink(missing_ok=True)


class LocalProvider:
    name = "local"

    def __init__(self) -> None:
        self.resource_types = {"local_file": LocalFile()}


def make(config: Mapping[str, Any]) -> LocalProvider:
    return LocalProvider()
