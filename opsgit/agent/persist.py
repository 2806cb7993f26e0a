"""Durability for the dev agent: SQLite in WAL mode with `synchronous=FULL`, one transaction per
acknowledged write, committed before the answer goes out."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from opsgit.agent.store import Change, Entry, Session, Store
from opsgit.errors import UserError

# SQLite integers are signed 64-bit; Consul's flags are unsigned 64-bit (`consul lock -n`'s semaphore
# flag is 0xE0F69A2BAA414DE0): they are stored in two's complement and read back unsigned.
UINT64 = 2**64


def _signed(flags: int) -> int:
    return flags - UINT64 if flags >= UINT64 // 2 else flags


def _unsigned(stored: int) -> int:
    return stored + UINT64 if stored < 0 else stored


SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, flags INTEGER NOT NULL,
    create_index INTEGER NOT NULL, modify_index INTEGER NOT NULL, lock_index INTEGER NOT NULL, session TEXT);
CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Database:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "agent.db"
        try:
            self.connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=FULL")
            self.connection.executescript(SCHEMA)
        except sqlite3.DatabaseError as error:
            raise UserError(f"the agent's data directory holds no usable database ({error})", file=str(self.path),
                            hint="restore it, or move it away to start with an empty agent") from None

    def load(self, store: Store) -> None:
        meta = dict(self.connection.execute("SELECT name, value FROM meta"))
        store.index = max(store.index, int(meta.get("index", 1)))
        store.kv_index = int(meta.get("kv_index", 1))
        for row in self.connection.execute("SELECT key, value, flags, create_index, modify_index, lock_index, "
                                           "session FROM kv ORDER BY key"):
            store.kv[row[0]] = Entry(row[0], row[1], _unsigned(row[2]), *row[3:])
        store._keys = sorted(store.kv)
        for (body,) in self.connection.execute("SELECT body FROM sessions"):
            data = json.loads(body)
            ttl = float(data["TTL"].rstrip("s")) if data["TTL"] else None
            store.sessions[data["ID"]] = Session(data["ID"], data["Name"], data["Node"], data["LockDelay"] / 1e9,
                                                 data["Behavior"], ttl, data["NodeChecks"], data["CreateIndex"],
                                                 data["ModifyIndex"])
        catalog = meta.get("catalog")
        if catalog:
            data = json.loads(catalog)
            store.nodes.update(data["nodes"])
            store.services.update({tuple(k.split("\0", 1)): v for k, v in data["services"].items()})
            store.checks.update({tuple(k.split("\0", 1)): v for k, v in data["checks"].items()})
            store.catalog_index = int(meta.get("catalog_index", 1))

    def loaded(self, like: Store) -> Store:
        """A store as this database holds it, for the node `like` serves."""
        store = Store(node=like.node_name, address=like.nodes[like.node_name]["Address"], datacenter=like.datacenter)
        self.load(store)
        return store

    def save(self, store: Store, change: Change) -> None:
        cursor = self.connection.cursor()
        cursor.execute("BEGIN")
        try:
            for key, row in change.kv_rows.items():
                if row is None:
                    cursor.execute("DELETE FROM kv WHERE key = ?", (key,))
                else:
                    key, value, flags, *rest = row
                    cursor.execute("INSERT OR REPLACE INTO kv VALUES (?, ?, ?, ?, ?, ?, ?)",
                                   (key, value, _signed(flags), *rest))
            for session_id, body in change.sessions.items():
                if body is None:
                    cursor.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
                else:
                    cursor.execute("INSERT OR REPLACE INTO sessions VALUES (?, ?)", (session_id, json.dumps(body)))
            meta: list[tuple[str, str]] = [("index", str(store.index)), ("kv_index", str(store.kv_index))]
            if change.catalog:
                meta += [("catalog", json.dumps(_catalog(store))), ("catalog_index", str(store.catalog_index))]
            cursor.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.connection.close()


def _catalog(store: Store) -> dict[str, Any]:
    return {"nodes": store.nodes,
            "services": {"\0".join(k): v for k, v in store.services.items()},
            "checks": {"\0".join(k): v for k, v in store.checks.items()}}
