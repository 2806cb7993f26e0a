"""`time_sleep`, as in Terraform's hashicorp/time provider: waits `create_duration` after it is
created (and `destroy_duration` before it is destroyed), so that what depends on it starts only
then — for an API that needs a moment after a change, or a rollout that should pause. Replaced
when its `triggers` change."""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from opsgit.consul.durations import parse_duration
from opsgit.providers.base import Field, ProviderError, Schema


def _seconds(config: Mapping[str, Any], key: str) -> float:
    value = config.get(key)
    if value in (None, ""):
        return 0.0
    try:
        return parse_duration(str(value))
    except ValueError:
        raise ProviderError(f"time_sleep: {key} {value!r} is not a duration (write 30s, 500ms or 2m)") from None


class TimeSleep:
    schema = Schema({"create_duration": Field(force_new=True), "destroy_duration": Field(force_new=True),
                     "triggers": Field(force_new=True), "id": Field(computed=True)})

    def read(self, resource_id: str, attributes: Mapping[str, Any]) -> dict[str, Any] | None:
        return dict(attributes)

    def read_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any] | None]:
        return [dict(attributes) for _, attributes in items]

    def create(self, config: Mapping[str, Any], token: str) -> tuple[str, dict[str, Any]]:
        time.sleep(_seconds(config, "create_duration"))
        resource_id = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds") + "-" + uuid.uuid4().hex[:8]
        return resource_id, {**config, "id": resource_id}

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        return {**config, "id": resource_id}

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        time.sleep(_seconds(attributes, "destroy_duration"))


class TimeProvider:
    name = "time"

    def __init__(self) -> None:
        self.resource_types = {"time_sleep": TimeSleep()}


def make(config: Mapping[str, Any]) -> TimeProvider:
    return TimeProvider()
