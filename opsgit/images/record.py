"""What an image build leaves behind: a history record beside the environment's state and the
Consul KV entry `opsgit/images/<env>/<role>` that hosts and tools read the current image from."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from opsgit.consul.client import Consul
from opsgit.gitops import history
from opsgit.repo.values import Environment


@dataclass(frozen=True)
class ImageRecord:
    role: str
    env: str
    image_id: str
    artifact_id: str
    builder: str
    builder_type: str
    commit: str | None
    at: str
    template_hash: str
    packer_run_uuid: str
    files: tuple[str, ...] = ()
    who: str | None = None
    run: int = 0  # the build's run: its whole Packer log (`opsgit history --env ENV --run N`)

    def to_json(self) -> dict[str, Any]:
        return {"id": uuid.uuid4().hex, **asdict(self), "files": list(self.files)}


def kv_key(env: str, role: str) -> str:
    return f"opsgit/images/{env}/{role}"


def record_image(root: Path, environment: Environment, record: ImageRecord, consul: Consul) -> None:
    """History first (it is beside the state and durable), then Consul KV."""
    entry = record.to_json()
    history.append(history.history_store(environment.state, root), history.IMAGES, environment.name, entry)
    consul.kv.put(kv_key(record.env, record.role), json.dumps(entry, sort_keys=True).encode())

