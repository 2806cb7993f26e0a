"""`null_resource`: stores `triggers`, is replaced when they change. For ordering, tests and
benchmarks: it makes no call anywhere."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from opsgit.providers.base import Field, Schema


class NullResource:
    schema = Schema({"triggers": Field(force_new=True), "id": Field(computed=True)})

    def read(self, resource_id: str, attributes: Mapping[str, Any]) -> dict[str, Any] | None:
        return dict(attributes)

    def read_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any] | None]:
        return [dict(attributes) for _, attributes in items]

    def create(self, config: Mapping[str, Any], token: str) -> tuple[str, dict[str, Any]]:
        resource_id = str(random.getrandbits(62))
        return resource_id, {**config, "id": resource_id}

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        return {**config, "id": resource_id}

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        return None


class NullProvider:
    name = "null"

    def __init__(self) -> None:
        self.resource_types = {"null_resource": NullResource()}


def make(config: Mapping[str, Any]) -> NullProvider:
    return NullProvider()
