"""The consul provider: `consul_keys` (KV entries under a prefix) and `consul_service` (catalog)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from opsgit.consul.client import Consul
from opsgit.providers.base import Field, ReadEach, Schema

MAX_TXN = 64


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


class ConsulKeys:
    """KV entries under `prefix`. Keys that leave the configuration are deleted; keys under the
    prefix that opsgit never wrote are left alone. Refresh is one recursive read per prefix."""

    schema = Schema({"prefix": Field(required=True, force_new=True), "keys": Field(required=True),
                     "datacenter": Field(force_new=True), "id": Field(computed=True)})

    def __init__(self, consul: Consul) -> None:
        self.consul = consul

    def _path(self, prefix: str, key: str) -> str:
        return f"{prefix.rstrip('/')}/{key}"

    def read(self, resource_id: str, attributes: Mapping[str, Any]) -> dict[str, Any] | None:
        return self.read_many([(resource_id, attributes)])[0]

    def read_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any] | None]:
        trees: dict[str, dict[str, str]] = {}
        results: list[dict[str, Any] | None] = []
        for resource_id, attributes in items:
            prefix = str(attributes.get("prefix") or resource_id)
            if prefix not in trees:
                _, pairs = self.consul.kv.tree(prefix.rstrip("/") + "/")
                trees[prefix] = {p.key: p.text for p in pairs}
            tree = trees[prefix]
            managed = attributes.get("keys") or {}
            keys = {k: tree[self._path(prefix, k)] for k in managed if self._path(prefix, k) in tree}
            results.append({**attributes, "prefix": prefix, "keys": keys, "id": prefix} if keys or not managed
                           else None)
        return results

    def _write(self, prefix: str, puts: Mapping[str, Any], deletes: Sequence[str]) -> None:
        operations = [{"KV": {"Verb": "set", "Key": self._path(prefix, k),
                              "Value": __import__("base64").b64encode(_value(v).encode()).decode()}}
                      for k, v in puts.items()]
        operations += [{"KV": {"Verb": "delete", "Key": self._path(prefix, k)}} for k in deletes]
        for start in range(0, len(operations), MAX_TXN):
            committed, body = self.consul.kv.txn(operations[start:start + MAX_TXN])
            if not committed:
                raise RuntimeError(f"Consul refused the KV transaction: {body.get('Errors')}")

    def create(self, config: Mapping[str, Any], token: str) -> tuple[str, dict[str, Any]]:
        prefix = str(config["prefix"])
        self._write(prefix, config["keys"], [])
        return prefix, {**config, "keys": {k: _value(v) for k, v in config["keys"].items()}, "id": prefix}

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        prefix = str(config["prefix"])
        gone = [k for k in (old.get("keys") or {}) if k not in config["keys"]]
        self._write(prefix, config["keys"], gone)
        return {**config, "keys": {k: _value(v) for k, v in config["keys"].items()}, "id": prefix}

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        self._write(str(attributes["prefix"]), {}, list(attributes.get("keys") or {}))


class ConsulService(ReadEach):
    """A service registered in the catalog on a node (an external service, as Terraform's is)."""

    schema = Schema({"name": Field(required=True, force_new=True), "node": Field(required=True, force_new=True),
                     "address": Field(), "port": Field(), "tags": Field(), "meta": Field(),
                     "service_id": Field(force_new=True), "id": Field(computed=True)})

    def __init__(self, consul: Consul) -> None:
        self.consul = consul

    def read(self, resource_id: str, attributes: Mapping[str, Any]) -> dict[str, Any] | None:
        node, _, service_id = resource_id.partition("/")
        _, found = self.consul.catalog.node(node)
        service = ((found or {}).get("Services") or {}).get(service_id)
        if service is None:
            return None
        data: dict[str, Any] = {"name": service["Service"], "node": node, "id": resource_id}
        if "address" in attributes or service.get("Address"):
            data["address"] = service.get("Address") or (found or {}).get("Node", {}).get("Address", "")
        for key, source in (("port", "Port"), ("tags", "Tags"), ("meta", "Meta")):
            if key in attributes or service.get(source):
                data[key] = service.get(source)
        if "service_id" in attributes:
            data["service_id"] = service_id
        return data

    def _register(self, config: Mapping[str, Any]) -> str:
        service_id = str(config.get("service_id") or config["name"])
        service = {"ID": service_id, "Service": config["name"], "Address": config.get("address") or "",
                   "Port": int(config.get("port") or 0), "Tags": list(config.get("tags") or []),
                   "Meta": dict(config.get("meta") or {})}
        self.consul.catalog.register(str(config["node"]), str(config.get("address") or "127.0.0.1"),
                                     service=service)
        return f"{config['node']}/{service_id}"

    def create(self, config: Mapping[str, Any], token: str) -> tuple[str, dict[str, Any]]:
        resource_id = self._register(config)
        return resource_id, {**config, "id": resource_id}

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        return {**config, "id": self._register(config)}

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        node, _, service_id = resource_id.partition("/")
        self.consul.catalog.deregister(node, service_id=service_id)


class ConsulProvider:
    name = "consul"

    def __init__(self, config: Mapping[str, Any]) -> None:
        # The environment's variable wins: dev points it at the local agent.
        address = os.environ.get("CONSUL_HTTP_ADDR") or config.get("address")
        self.consul = Consul(str(address) if address else None)
        self.resource_types = {"consul_keys": ConsulKeys(self.consul), "consul_service": ConsulService(self.consul)}


def make(config: Mapping[str, Any]) -> ConsulProvider:
    return ConsulProvider(config)
