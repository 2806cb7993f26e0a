"""The dev agent's data: KV, sessions and the catalog, with Consul's index semantics.

One global, monotonic index is raised by every write, as Raft's is. Each KV entry keeps its
create, modify and lock indexes; a deleted key leaves a tombstone with its delete index, so that a
watch on a prefix wakes when a key under it is deleted and its index never goes backwards while
the tombstone lives. Writes return the rows they changed so that the caller can make them
durable before answering. Waiting is left to the caller: every write reports which keys and
tables changed (`Change`), and the server wakes the blocking queries that watch them.
"""

from __future__ import annotations

import bisect
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_VALUE_BYTES = 512 * 1024
DEFAULT_LOCK_DELAY = 15.0
MAX_LOCK_DELAY = 60.0
MIN_TTL, MAX_TTL = 10.0, 86400.0
TOMBSTONE_TTL = 15 * 60.0
SERF_CHECK = "serfHealth"
CONSUL_SERVICE = "consul"  # what a Consul server's leader registers for its servers (port 8300, server RPC)
VERSION = "1.22.0"  # the Consul release whose answers the agent keeps


class StoreError(Exception):
    """A request the store refuses; `status` is the HTTP status Consul answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Entry:
    __slots__ = ("create_index", "flags", "key", "lock_index", "modify_index", "session", "value")

    def __init__(self, key: str, value: bytes, flags: int, create_index: int, modify_index: int,
                 lock_index: int = 0, session: str | None = None) -> None:
        self.key = key
        self.value = value
        self.flags = flags
        self.create_index = create_index
        self.modify_index = modify_index
        self.lock_index = lock_index
        self.session = session

    def copy(self) -> Entry:
        return Entry(self.key, self.value, self.flags, self.create_index, self.modify_index, self.lock_index,
                     self.session)

    def row(self) -> tuple[str, bytes, int, int, int, int, str | None]:
        return (self.key, self.value, self.flags, self.create_index, self.modify_index, self.lock_index,
                self.session)


@dataclass
class Session:
    id: str
    name: str
    node: str
    lock_delay: float
    behavior: str
    ttl: float | None
    checks: list[str]
    create_index: int
    modify_index: int

    def to_json(self) -> dict[str, Any]:
        return {"ID": self.id, "Name": self.name, "Node": self.node,
                "LockDelay": int(self.lock_delay * 1e9), "Behavior": self.behavior,
                "TTL": _format_ttl(self.ttl), "NodeChecks": list(self.checks), "ServiceChecks": None,
                "CreateIndex": self.create_index, "ModifyIndex": self.modify_index}


def _format_ttl(ttl: float | None) -> str:
    if not ttl:
        return ""
    return f"{int(ttl)}s" if ttl == int(ttl) else f"{ttl}s"


@dataclass
class Change:
    """What one write changed: for waking watchers and for persistence."""

    index: int
    keys: set[str] = field(default_factory=set)
    tables: set[str] = field(default_factory=set)
    kv_rows: dict[str, tuple[Any, ...] | None] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    catalog: bool = False
    # Checks that went critical or away, (node, check ID), and nodes that went away (node, None):
    # the sessions tied to them are invalidated once the change is committed, as Consul's state
    # store does in the same transaction.
    invalidates: set[tuple[str, str | None]] = field(default_factory=set)


class Store:
    def __init__(self, node: str = "opsgit-dev", address: str = "127.0.0.1", datacenter: str = "dc1") -> None:
        self.index = 1
        self.node_name = node
        self.datacenter = datacenter
        self.kv: dict[str, Entry] = {}
        self._keys: list[str] = []
        self.tombstones: dict[str, tuple[int, float]] = {}
        self._tombstone_keys: list[str] = []
        self.kv_index = 1
        self.sessions: dict[str, Session] = {}
        self.sessions_index = 1
        self.lock_delays: dict[str, float] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.services: dict[tuple[str, str], dict[str, Any]] = {}
        self.checks: dict[tuple[str, str], dict[str, Any]] = {}
        self.catalog_index = 1
        self._register_own_node(address)

    DURABLE = ("index", "kv", "_keys", "kv_index", "sessions", "sessions_index", "nodes", "services", "checks",
               "catalog_index")

    def restore(self, durable: Store) -> None:
        """Take back what `durable` (this store as its database holds it) has: a write that could
        not be made durable is undone. Tombstones and lock-delays stay: they are never stored."""
        for name in self.DURABLE:
            setattr(self, name, getattr(durable, name))

    # -- indexes -----------------------------------------------------------------------------

    def _next(self, change: Change | None = None) -> Change:
        if change is not None:
            return change
        self.index += 1
        return Change(self.index)

    def key_index(self, key: str) -> int:
        entry = self.kv.get(key)
        return entry.modify_index if entry else max(1, self.kv_index)

    def prefix_index(self, prefix: str) -> int:
        found = 0
        for key in self.keys_under(prefix):
            found = max(found, self.kv[key].modify_index)
        start = bisect.bisect_left(self._tombstone_keys, prefix)
        for key in self._tombstone_keys[start:]:
            if not key.startswith(prefix):
                break
            found = max(found, self.tombstones[key][0])
        return found or max(1, self.kv_index)

    def keys_under(self, prefix: str) -> Iterator[str]:
        start = bisect.bisect_left(self._keys, prefix)
        for key in self._keys[start:]:
            if not key.startswith(prefix):
                return
            yield key

    # -- KV ------------------------------------------------------------------------------------

    def kv_set(self, key: str, value: bytes, flags: int = 0, *, cas: int | None = None,
               acquire: str | None = None, release: str | None = None, change: Change | None = None
               ) -> tuple[bool, Change | None]:
        if len(value) > MAX_VALUE_BYTES:
            raise StoreError(413, f"Request body({len(value)} bytes) too large, max size: {MAX_VALUE_BYTES} bytes. "
                                  "See https://developer.hashicorp.com/consul/docs/agent/config/config-files"
                                  "#kv_max_value_size.")
        entry = self.kv.get(key)
        if cas is not None and (entry.modify_index if entry else 0) != cas:
            return False, None
        if acquire is not None:
            self._session_or_fail(acquire)
            if entry is not None and entry.session:
                if entry.session != acquire:
                    return False, None
            elif self.lock_delays.get(key, 0.0) > time.monotonic():
                return False, None
        if release is not None:
            self._session_or_fail(release)
            if entry is None or entry.session != release:
                return False, None
        change = self._next(change)
        if entry is None:
            entry = Entry(key, value, flags, change.index, change.index)
            self.kv[key] = entry
            bisect.insort(self._keys, key)
            self._forget_tombstone(key)
        else:
            entry.value, entry.flags, entry.modify_index = value, flags, change.index
        if acquire is not None and entry.session != acquire:
            entry.session = acquire
            entry.lock_index += 1
        if release is not None:
            entry.session = None
        self._kv_changed(change, entry)
        return True, change

    def kv_delete(self, key: str, *, recurse: bool = False, cas: int | None = None,
                  change: Change | None = None) -> tuple[bool, Change | None]:
        if recurse:
            keys = list(self.keys_under(key))
        else:
            entry = self.kv.get(key)
            if cas is not None and (entry is None or entry.modify_index != cas):
                return False, None
            keys = [key] if entry else []
        change = self._next(change)
        for doomed in keys:
            self._remove_key(doomed, change)
        self.kv_index = change.index
        change.tables.add("kv")
        return True, change

    def _remove_key(self, key: str, change: Change) -> None:
        del self.kv[key]
        del self._keys[bisect.bisect_left(self._keys, key)]
        if key not in self.tombstones:
            bisect.insort(self._tombstone_keys, key)
        self.tombstones[key] = (change.index, time.monotonic())
        change.keys.add(key)
        change.kv_rows[key] = None

    def _forget_tombstone(self, key: str) -> None:
        if self.tombstones.pop(key, None) is not None:
            del self._tombstone_keys[bisect.bisect_left(self._tombstone_keys, key)]

    def _kv_changed(self, change: Change, entry: Entry) -> None:
        self.kv_index = change.index
        change.keys.add(entry.key)
        change.tables.add("kv")
        change.kv_rows[entry.key] = entry.row()

    def reap_tombstones(self, now: float | None = None) -> None:
        limit = (now or time.monotonic()) - TOMBSTONE_TTL
        for key in [k for k, (_, since) in self.tombstones.items() if since < limit]:
            self._forget_tombstone(key)

    # -- sessions ------------------------------------------------------------------------------

    def _session_or_fail(self, session: str) -> Session:
        found = self.sessions.get(session)
        if found is None:
            raise StoreError(500, f'invalid session "{session}"')
        return found

    def session_create(self, *, name: str = "", node: str | None = None, lock_delay: float = DEFAULT_LOCK_DELAY,
                       behavior: str = "release", ttl: float | None = None,
                       checks: list[str] | None = None) -> tuple[Session, Change]:
        node = node or self.node_name
        # Consul validates these in the server's Session.Apply, so they come back as its RPC
        # errors do: 500, with the server's words.
        if node not in self.nodes:
            raise StoreError(500, "Missing node registration")
        if behavior not in ("release", "delete"):
            raise StoreError(500, f"Invalid Behavior setting '{behavior}'")
        if ttl is not None and ttl != 0 and not MIN_TTL <= ttl <= MAX_TTL:
            raise StoreError(500, f"Invalid Session TTL '{ttl * 1e9:.0f}', must be between [10s=24h0m0s]")
        if not 0 <= lock_delay <= MAX_LOCK_DELAY:
            raise StoreError(400, f"Invalid LockDelay: {lock_delay}s exceeds the maximum of 60s")
        checks = [SERF_CHECK] if checks is None else checks
        for check in checks:
            found = self.checks.get((node, check))
            if found is None:
                raise StoreError(500, f"Missing check '{check}' registration")
            if found["Status"] == "critical":
                raise StoreError(500, f"Check '{check}' is in critical state")
        change = self._next()
        session = Session(str(uuid.uuid4()), name, node, lock_delay, behavior, ttl or None, checks, change.index,
                          change.index)
        self.sessions[session.id] = session
        self._session_changed(change, session.id)
        return session, change

    def _session_changed(self, change: Change, session_id: str) -> None:
        self.sessions_index = change.index
        change.tables.add("sessions")
        found = self.sessions.get(session_id)
        change.sessions[session_id] = found.to_json() if found else None

    def session_destroy(self, session_id: str) -> Change | None:
        """Invalidate a session: its locks are released (or their keys deleted) and lock-delay starts."""
        session = self.sessions.pop(session_id, None)
        if session is None:
            return None
        change = self._next()
        until = time.monotonic() + session.lock_delay
        for key in [k for k, e in self.kv.items() if e.session == session_id]:
            if session.lock_delay:
                self.lock_delays[key] = until
            if session.behavior == "delete":
                self._remove_key(key, change)
                self.kv_index = change.index
                change.tables.add("kv")
            else:
                entry = self.kv[key]
                entry.session = None
                entry.modify_index = change.index
                self._kv_changed(change, entry)
        self._session_changed(change, session_id)
        return change

    def sessions_of_node(self, node: str) -> list[Session]:
        return [s for s in self.sessions.values() if s.node == node]

    # -- catalog -------------------------------------------------------------------------------

    def _register_own_node(self, address: str) -> None:
        self.nodes[self.node_name] = {"ID": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.node_name)),
                                      "Node": self.node_name, "Address": address, "Datacenter": self.datacenter,
                                      "TaggedAddresses": {"lan": address, "wan": address},
                                      "Meta": {"consul-network-segment": ""}, "CreateIndex": 1, "ModifyIndex": 1}
        self.checks[(self.node_name, SERF_CHECK)] = {
            "Node": self.node_name, "CheckID": SERF_CHECK, "Name": "Serf Health Status", "Status": "passing",
            "Notes": "", "Output": "Agent alive and reachable", "ServiceID": "", "ServiceName": "",
            "ServiceTags": [], "Type": "", "CreateIndex": 1, "ModifyIndex": 1}
        self.services[(self.node_name, CONSUL_SERVICE)] = {
            "ID": CONSUL_SERVICE, "Service": CONSUL_SERVICE, "Tags": [], "Address": "", "Port": 8300,
            "Meta": {"non_voter": "false", "raft_version": "3", "read_replica": "false",
                     "serf_protocol_current": "2", "serf_protocol_max": "5", "serf_protocol_min": "1",
                     "version": VERSION},
            "TaggedAddresses": {}, "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": False,
            "CreateIndex": 1, "ModifyIndex": 1}

    def catalog_change(self) -> Change:
        change = self._next()
        self.catalog_index = change.index
        change.tables.add("catalog")
        change.catalog = True
        return change

    def register(self, node: dict[str, Any], service: dict[str, Any] | None,
                 checks: list[dict[str, Any]]) -> Change:
        change = self.catalog_change()
        name = node["Node"]
        existing = self.nodes.get(name)
        node.setdefault("ID", existing["ID"] if existing else "")
        node.setdefault("Datacenter", self.datacenter)
        node.setdefault("TaggedAddresses", existing["TaggedAddresses"] if existing else {})
        node.setdefault("Meta", existing["Meta"] if existing else {})
        node["CreateIndex"] = existing["CreateIndex"] if existing else change.index
        node["ModifyIndex"] = change.index
        self.nodes[name] = node
        if service is not None:
            previous = self.services.get((name, service["ID"]))
            service["CreateIndex"] = previous["CreateIndex"] if previous else change.index
            service["ModifyIndex"] = change.index
            self.services[(name, service["ID"])] = service
        for check in checks:
            previous = self.checks.get((name, check["CheckID"]))
            check["Node"] = name
            check["CreateIndex"] = previous["CreateIndex"] if previous else change.index
            check["ModifyIndex"] = change.index
            owner = self.services.get((name, check.get("ServiceID") or ""))
            check["ServiceName"] = owner["Service"] if owner else ""
            check["ServiceTags"] = owner["Tags"] if owner else []
            self.checks[(name, check["CheckID"])] = check
            if check.get("Status") == "critical":
                change.invalidates.add((name, check["CheckID"]))
        return change

    def deregister(self, node: str, service_id: str | None = None, check_id: str | None = None) -> Change:
        change = self.catalog_change()
        if service_id:
            self.services.pop((node, service_id), None)
            for key in [k for k, c in self.checks.items() if k[0] == node and c.get("ServiceID") == service_id]:
                del self.checks[key]
                change.invalidates.add(key)
        elif check_id:
            self.checks.pop((node, check_id), None)
            change.invalidates.add((node, check_id))
        else:
            self.nodes.pop(node, None)
            for table in (self.services, self.checks):
                for key in [k for k in table if k[0] == node]:
                    del table[key]
            change.invalidates.add((node, None))
        return change

    def sessions_invalidated_by(self, change: Change) -> list[str]:
        """The sessions a committed change ends: tied to a check it made critical or removed, or
        on a node it removed."""
        return [session.id for session in self.sessions.values()
                if (session.node, None) in change.invalidates
                or any((session.node, check) in change.invalidates for check in session.checks)]

    def set_check_status(self, node: str, check_id: str, status: str, output: str) -> Change | None:
        """Update a check (None when nothing changed); going critical ends the sessions tied to it."""
        check = self.checks.get((node, check_id))
        if check is None:
            raise StoreError(404, f'Unknown check ID "{check_id}". Ensure that the check ID is passed, not the '
                                  "check name.")
        if check["Status"] == status and check.get("Output", "") == output:
            return None
        change = self.catalog_change()
        check["Status"], check["Output"], check["ModifyIndex"] = status, output, change.index
        if status == "critical":
            change.invalidates.add((node, check_id))
        return change

    def service_entries(self, name: str) -> list[tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]]:
        entries = []
        for (node_name, _), service in sorted(self.services.items()):
            if service["Service"] != name or node_name not in self.nodes:
                continue
            checks = [c for (n, _), c in sorted(self.checks.items())
                      if n == node_name and (not c.get("ServiceID") or c.get("ServiceID") == service["ID"])]
            entries.append((self.nodes[node_name], service, checks))
        return entries
