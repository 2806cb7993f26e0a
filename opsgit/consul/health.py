"""Consul's health as plain values, for the dashboard and `opsgit alerts`: every check (from
`/v1/health/state/any`), the nodes (`/v1/catalog/nodes`) and what they add up to — the overview
sentence, each service's instances and how many are unhealthy, each node's checks."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opsgit.output import plural

ORDER = {"critical": 0, "warning": 1, "maintenance": 1, "passing": 2}


@dataclass(frozen=True)
class Check:
    node: str
    check_id: str
    name: str
    status: str
    output: str = ""
    service_id: str = ""
    service_name: str = ""
    notes: str = ""

    @property
    def key(self) -> str:
        """Unique in a datacenter: a check's ID is unique per node."""
        return f"{self.node}/{self.check_id}"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Check:
        return cls(node=str(data.get("Node", "")), check_id=str(data.get("CheckID", "")),
                   name=str(data.get("Name", "")), status=str(data.get("Status", "critical")),
                   output=str(data.get("Output") or ""), service_id=str(data.get("ServiceID") or ""),
                   service_name=str(data.get("ServiceName") or ""), notes=str(data.get("Notes") or ""))


def worst(statuses: Iterable[str]) -> str:
    return min(statuses, key=lambda s: ORDER.get(s, 0), default="passing")


@dataclass(frozen=True)
class Instance:
    service: str
    service_id: str
    node: str
    checks: tuple[Check, ...]

    @property
    def status(self) -> str:
        return worst(c.status for c in self.checks)


@dataclass(frozen=True)
class Service:
    name: str
    instances: tuple[Instance, ...]

    @property
    def status(self) -> str:
        return worst(i.status for i in self.instances)

    @property
    def unhealthy_percent(self) -> int:
        if not self.instances:
            return 0
        return round(100 * sum(1 for i in self.instances if i.status == "critical") / len(self.instances))


@dataclass(frozen=True)
class Node:
    name: str
    address: str
    checks: tuple[Check, ...]

    @property
    def status(self) -> str:
        return worst(c.status for c in self.checks)


@dataclass(frozen=True)
class Health:
    datacenter: str
    checks: tuple[Check, ...]
    node_addresses: Mapping[str, str] = field(default_factory=dict)
    # (service, service id, node) of every registered instance, checked or not (the catalog's)
    registered: tuple[tuple[str, str, str], ...] = ()

    @classmethod
    def from_json(cls, datacenter: str, checks: Sequence[Mapping[str, Any]],
                  nodes: Sequence[Mapping[str, Any]] = (), instances: Sequence[Mapping[str, Any]] = ()) -> Health:
        """From `/v1/health/state/any`, `/v1/catalog/nodes` and `/v1/catalog/service/<name>` answers."""
        return cls(datacenter, tuple(sorted((Check.from_json(c) for c in checks), key=lambda c: c.key)),
                   {str(n.get("Node")): str(n.get("Address", "")) for n in nodes},
                   tuple(sorted({(str(i.get("ServiceName", "")), str(i.get("ServiceID", "")), str(i.get("Node", "")))
                                 for i in instances})))

    @functools.cached_property  # a page reads them several times; the values are frozen
    def nodes(self) -> list[Node]:
        names = sorted(set(self.node_addresses) | {c.node for c in self.checks})
        return [Node(name, self.node_addresses.get(name, ""), tuple(c for c in self.checks if c.node == name))
                for name in names]

    @functools.cached_property
    def services(self) -> list[Service]:
        by_instance: dict[tuple[str, str, str], list[Check]] = {key: [] for key in self.registered}
        node_checks: dict[str, list[Check]] = {}
        for check in self.checks:
            if check.service_id:
                by_instance.setdefault((check.service_name, check.service_id, check.node), []).append(check)
            else:
                node_checks.setdefault(check.node, []).append(check)
        services: dict[str, list[Instance]] = {}
        for (name, service_id, node), checks in sorted(by_instance.items()):
            # a node's own checks (serfHealth) count for every service on it, as Consul's UI counts them
            services.setdefault(name, []).append(Instance(name, service_id, node,
                                                          tuple(node_checks.get(node, []) + checks)))
        return [Service(name, tuple(instances)) for name, instances in sorted(services.items())]

    def counts(self) -> dict[str, int]:
        found = {"passing": 0, "warning": 0, "critical": 0}
        for check in self.checks:
            status = "warning" if check.status == "maintenance" else check.status
            found[status] = found.get(status, 0) + 1
        return found

    def sentence(self) -> str:
        """`Your infrastructure is healthy — 84 nodes and 38 services are reporting 477 passing
        health checks`, or what is not."""
        counts, nodes, services = self.counts(), len(self.nodes), len(self.services)
        if not self.checks:
            return f"No health checks are registered in {self.datacenter}."
        if counts["critical"] or counts["warning"]:
            parts = [plural(counts[s], f"{s} check") for s in ("critical", "warning") if counts[s]]
            unhealthy = [s.name for s in self.services if s.status == "critical"]
            return (f"{' and '.join(parts)} in {self.datacenter}"
                    + (f" — unhealthy: {', '.join(unhealthy[:5])}" + (" and more" if len(unhealthy) > 5 else "")
                       if unhealthy else "")
                    + f"; {plural(counts['passing'], 'check')} passing.")
        return (f"Your infrastructure is healthy — {plural(nodes, 'node')} and {plural(services, 'service')} "
                f"are reporting {plural(counts['passing'], 'passing health check')}.")
