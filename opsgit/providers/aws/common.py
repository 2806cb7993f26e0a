"""What every aws resource type shares: clients (through `opsgit.awsclients`), regions, tags,
batched reads, and reading an object back after writing it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opsgit import awsclients
from opsgit.providers.base import ResourceType

TOKEN_TAG = "opsgit:token"
BATCH = 50
# A fresh object may not be listed at once (eventual consistency): how long to ask again.
READ_BACK_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0)


class Clients:
    """One boto3 client per (service, region), created lazily and shared by threads."""

    def __init__(self, region: str) -> None:
        self.region = region
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self.region)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = awsclients.client(service, key[1])
            return self._clients[key]


class AwsType:
    """What every aws resource type shares: the provider's clients."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients


def region_of(attributes: Mapping[str, Any]) -> str | None:
    region = attributes.get("region")
    return str(region) if region else None


def tags_list(tags: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"Key": str(k), "Value": str(v)} for k, v in sorted(tags.items())]


def tags_map(tags: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or [] if t["Key"] != TOKEN_TAG and not t["Key"].startswith("aws:")}


def by_region(items: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str | None, list[int]]:
    groups: dict[str | None, list[int]] = {}
    for position, (_, attributes) in enumerate(items):
        groups.setdefault(region_of(attributes), []).append(position)
    return groups


def read_batched(clients: Clients, service: str, items: Sequence[tuple[str, Mapping[str, Any]]],
                  fetch: Callable[[Any, list[str]], Mapping[str, Any]],
                  shape: Callable[[Any, Mapping[str, Any]], dict[str, Any]]) -> list[dict[str, Any] | None]:
    """Read many resources with one call per region and chunk: `fetch(client, ids)` returns what
    exists by id, `shape(found, previous attributes)` makes it config-shaped; missing ones are None."""
    results: list[dict[str, Any] | None] = [None] * len(items)
    for region, positions in by_region(items).items():
        client = clients.get(service, region)
        for start in range(0, len(positions), BATCH):
            chunk = positions[start:start + BATCH]
            found = fetch(client, [items[p][0] for p in chunk])
            for position in chunk:
                item = found.get(items[position][0])
                results[position] = shape(item, items[position][1]) if item is not None else None
    return results


def ordered_like(found: list[Any], previous: Sequence[Any] | None) -> list[Any]:
    """`found` in the order of `previous` where the items match, new ones after: AWS returns
    rules and lists in its own order, and order is not a change."""
    rest = list(found)
    ordered = []
    for item in previous or []:
        if item in rest:
            rest.remove(item)
            ordered.append(item)
    return ordered + sorted(rest, key=repr)


def sync_tags(ec2: Any, resource_id: str, have: Mapping[str, str], wanted: Mapping[str, Any] | None) -> None:
    if wanted is None:
        return
    stale = [k for k in have if k not in wanted]
    changed = {k: v for k, v in wanted.items() if have.get(k) != str(v)}
    if stale:
        ec2.delete_tags(Resources=[resource_id], Tags=[{"Key": k} for k in stale])
    if changed:
        ec2.create_tags(Resources=[resource_id], Tags=tags_list(changed))


def read_back(kind: ResourceType, resource_id: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes of an object just created or changed, read as refresh reads them; asked
    again for a few seconds while the API does not list it yet."""
    attributes = kind.read(resource_id, config)
    for delay in READ_BACK_DELAYS:
        if attributes is not None:
            return attributes
        time.sleep(delay)
        attributes = kind.read(resource_id, config)
    if attributes is None:
        raise RuntimeError(f"{resource_id} was written but cannot be read back")
    return attributes
