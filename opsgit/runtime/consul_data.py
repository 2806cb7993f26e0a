"""What host templates read from Consul, as plain values, and the dependencies that name it.

A dependency is a hashable value (`("key", "service/web/dburl")`); the data of each is fetched
once, shared by every template that uses it, and watched with one blocking query.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsgit.consul.client import Consul
from opsgit.errors import RenderError

Dependency = tuple[str, ...]
DATACENTERS_POLL = 30.0  # seconds between reads of the datacenters a template watches
FILE_POLL = 2.0  # seconds between reads of a file a template watches (consul-template's FileQuerySleepTime)


@dataclass(frozen=True)
class KeyPair:
    key: str
    path: str
    value: str
    flags: int = 0
    create_index: int = 0
    modify_index: int = 0
    lock_index: int = 0
    session: str | None = None


@dataclass(frozen=True)
class ServiceInstance:
    node: str
    address: str
    port: int
    id: str
    name: str
    tags: tuple[str, ...] = ()
    meta: dict[str, str] = field(default_factory=dict)
    status: str = "passing"
    node_address: str = ""


def describe(dependency: Dependency) -> str:
    """What a dependency waits for, in words for a log line."""
    kind, *rest = dependency
    if kind == "key":
        return f"key {rest[0]!r}"
    if kind == "tree":
        return f"keys under {rest[0] + '/' if rest[0] else 'the KV root'}"
    if kind == "service":
        return f"service {rest[0]!r}"
    if kind == "file":
        return f"file {rest[0]}"
    return f"the catalog's {kind}"


class MissingKey(Exception):
    """A template called key() on a key that does not exist (yet)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def fetch(consul: Consul, dependency: Dependency, index: int = 0, wait: float | None = None) -> tuple[int, Any]:
    """(index, data) of one dependency; a blocking query when `index` is given."""
    kind = dependency[0]
    at: int | None = index or None
    if kind == "key":
        found, pair = consul.kv.get(dependency[1], index=at, wait=wait)
        return found, None if pair is None else (pair.text, pair.flags, pair.modify_index)
    if kind == "tree":
        prefix = dependency[1].rstrip("/") + "/" if dependency[1] else ""
        found, pairs = consul.kv.tree(prefix, index=at, wait=wait)
        return found, tuple(KeyPair(p.key[len(prefix):], p.key, p.text, p.flags, p.create_index, p.modify_index,
                                    p.lock_index, p.session) for p in pairs if not p.key.endswith("/"))
    if kind == "service":
        # ("service", name, tag, health, [dc]): health is "passing", "any" or a comma list of statuses
        name, tag, health = dependency[1], dependency[2] or None, dependency[3]
        datacenter = dependency[4] if len(dependency) > 4 else None
        found, entries = consul.health.service(name, passing=health == "passing", tag=tag, dc=datacenter or None,
                                               index=at, wait=wait)
        instances = (_instance(e) for e in entries)
        if health not in ("passing", "any"):
            wanted = set(health.split(","))
            instances = (i for i in instances if i.status in wanted)
        return found, tuple(sorted(instances, key=lambda s: (s.node, s.id)))
    if kind == "datacenters":
        if at:  # /v1/catalog/datacenters has no blocking queries: a watch polls it, gently
            time.sleep(min(wait or DATACENTERS_POLL, DATACENTERS_POLL))
        return 1, tuple(consul.catalog.datacenters())
    if kind == "file":
        if at:  # a file has no index to block on: a watch polls it
            time.sleep(min(wait or FILE_POLL, FILE_POLL))
        return 1, file_contents(dependency[1])
    if kind == "services":
        found, services = consul.catalog.services(index=at, wait=wait)
        return found, tuple(sorted((name, tuple(tags)) for name, tags in services.items()))
    if kind == "nodes":
        found, nodes = consul.catalog.nodes(index=at, wait=wait)
        return found, tuple(sorted((n["Node"], n["Address"]) for n in nodes))
    if kind == "node":
        name = dependency[1] or consul.agent.node_name()
        found, node = consul.catalog.node(name, index=at, wait=wait)
        return found, node
    raise ValueError(f"unknown dependency {dependency!r}")


def file_contents(path: str) -> tuple[str | None, str | None]:
    """(text, None), or (None, why it cannot be read): a file that goes away is a render error, not
    a crash of the watch."""
    try:
        return Path(path).read_text(encoding="utf-8"), None
    except OSError as error:
        return None, error.strerror or str(error)
    except UnicodeDecodeError:
        return None, "not UTF-8 text"


def _instance(entry: dict[str, Any]) -> ServiceInstance:
    service, node, checks = entry["Service"], entry["Node"], entry.get("Checks") or []
    statuses = [c["Status"] for c in checks]
    status = "critical" if "critical" in statuses else "warning" if "warning" in statuses else "passing"
    return ServiceInstance(node=node["Node"], address=service.get("Address") or node["Address"],
                           port=int(service.get("Port") or 0), id=service["ID"], name=service["Service"],
                           tags=tuple(service.get("Tags") or ()), meta=dict(service.get("Meta") or {}),
                           status=status, node_address=node["Address"])


class Functions:
    """The functions a host template calls, reading from `data` and recording what they used."""

    def __init__(self, data: dict[Dependency, Any], load: Callable[[Dependency], Any]) -> None:
        self.data = data
        self.load = load
        self.used: set[Dependency] = set()

    def _get(self, dependency: Dependency) -> Any:
        self.used.add(dependency)
        if dependency not in self.data:
            self.data[dependency] = self.load(dependency)
        return self.data[dependency]

    def key(self, path: str) -> str:
        found = self._get(("key", path))
        if found is None:
            raise MissingKey(path)
        return str(found[0])

    def key_or_default(self, path: str, default: Any = "") -> Any:
        found = self._get(("key", path))
        return default if found is None else found[0]

    def key_exists(self, path: str) -> bool:
        return self._get(("key", path)) is not None

    def tree(self, prefix: str) -> list[KeyPair]:
        return list(self._get(("tree", prefix.strip("/"))))

    def ls(self, prefix: str) -> list[KeyPair]:
        return [pair for pair in self.tree(prefix) if pair.key and "/" not in pair.key]

    def service(self, name: str, tag: str | None = None, passing: bool = True) -> list[ServiceInstance]:
        """consul-template's `service`: `service("redis")`, its shorthand `service("primary.redis@dc2")`
        and a health selection after `|`: `service("redis|any")`, `service("redis|passing,warning")`
        (by default only the instances whose checks all pass)."""
        query, _, health = name.partition("|")
        query, _, datacenter = query.partition("@")
        if "." in query and tag is None:
            tag, query = query.rsplit(".", 1)
        statuses = health.replace(" ", "") if health else ("passing" if passing else "any")
        unknown = set(statuses.split(",")) - {"passing", "warning", "critical", "any"}
        if unknown or not query:
            raise RenderError(f"service({name!r}): write service(\"[tag.]name[@dc][|any|passing,warning,...]\")")
        dependency: Dependency = ("service", query, tag or "", statuses)
        return list(self._get((*dependency, datacenter) if datacenter else dependency))

    def safe_ls(self, prefix: str) -> list[KeyPair]:
        """ls(), but the template is not rendered while the prefix holds nothing (consul-template's
        safeLs): an empty answer during an outage never empties a config file."""
        found = self.ls(prefix)
        if not found:
            raise MissingKey(prefix.strip("/") + "/")
        return found

    def safe_tree(self, prefix: str) -> list[KeyPair]:
        found = self.tree(prefix)
        if not found:
            raise MissingKey(prefix.strip("/") + "/")
        return found

    def datacenters(self) -> list[str]:
        return list(self._get(("datacenters",)))

    def services(self) -> list[dict[str, Any]]:
        return [{"name": name, "tags": list(tags)} for name, tags in self._get(("services",))]

    def nodes(self) -> list[dict[str, str]]:
        return [{"node": name, "address": address} for name, address in self._get(("nodes",))]

    def node(self, name: str = "") -> Any:
        return self._get(("node", name))

    def file(self, path: str) -> str:
        """A file on the host (consul-template's `file`), re-rendered when its contents change."""
        text, problem = self._get(("file", str(path)))
        if text is None:
            raise RenderError(f"file({path!r}): {problem}")
        return str(text)

    @staticmethod
    def env(name: str, default: str = "") -> str:
        return os.environ.get(name, default)

    def globals(self) -> dict[str, Callable[..., Any]]:
        return {name: getattr(self, name) for name in ("key", "key_or_default", "key_exists", "ls", "tree", "safe_ls",
                                                       "safe_tree", "service", "services", "node", "nodes",
                                                       "datacenters", "file", "env")}
