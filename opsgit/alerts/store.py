"""The alerts' SQLite file: every alert sent, and for each check (and each service) the state it
was last seen in, since when, and the state last alerted — so that a restart of opsgit or of
Consul neither repeats an alert nor loses one."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS subjects (
    key TEXT PRIMARY KEY,      -- node/<node>/<check id> or service/<name>
    status TEXT NOT NULL,      -- as last seen
    since REAL NOT NULL,       -- when it was first seen in that status (epoch seconds)
    alerted TEXT NOT NULL      -- the status the last alert told of ('passing' before any)
);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,        -- node or service
    subject TEXT NOT NULL,
    state TEXT NOT NULL,       -- critical, warning or passing (a recovery)
    message TEXT NOT NULL,
    delivery TEXT NOT NULL DEFAULT ''
);
"""


@dataclass(frozen=True)
class Subject:
    key: str
    status: str
    since: float
    alerted: str


@dataclass(frozen=True)
class StoredAlert:
    id: int
    at: str
    kind: str
    subject: str
    state: str
    message: str
    delivery: str


class AlertStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def subjects(self) -> dict[str, Subject]:
        with self._lock:
            rows = self._db.execute("SELECT key, status, since, alerted FROM subjects").fetchall()
        return {row[0]: Subject(*row) for row in rows}

    def save_subject(self, subject: Subject) -> None:
        with self._lock:
            self._db.execute("INSERT INTO subjects (key, status, since, alerted) VALUES (?, ?, ?, ?) "
                             "ON CONFLICT(key) DO UPDATE SET status = excluded.status, since = excluded.since, "
                             "alerted = excluded.alerted",
                             (subject.key, subject.status, subject.since, subject.alerted))

    def forget(self, keys: list[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM subjects WHERE key = ?", [(k,) for k in keys])

    def add_alert(self, subject: Subject, *, at: str, kind: str, name: str, state: str, message: str) -> int:
        """The alert and its subject's new `alerted` state in one transaction: either both are
        kept or neither, so a crash between them cannot repeat or lose the alert."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.execute(
                    "INSERT INTO alerts (at, kind, subject, state, message) VALUES (?, ?, ?, ?, ?)",
                    (at, kind, name, state, message))
                self._db.execute("UPDATE subjects SET alerted = ? WHERE key = ?", (subject.alerted, subject.key))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(cursor.lastrowid or 0)

    def set_delivery(self, alert_id: int, delivery: str) -> None:
        with self._lock:
            self._db.execute("UPDATE alerts SET delivery = ? WHERE id = ?", (delivery, alert_id))

    def recent(self, limit: int = 100) -> list[StoredAlert]:
        with self._lock:
            rows = self._db.execute("SELECT id, at, kind, subject, state, message, delivery FROM alerts "
                                    "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [StoredAlert(*row) for row in rows]

    def undelivered(self) -> list[StoredAlert]:
        with self._lock:
            rows = self._db.execute("SELECT id, at, kind, subject, state, message, delivery FROM alerts "
                                    "WHERE delivery = '' ORDER BY id").fetchall()
        return [StoredAlert(*row) for row in rows]


def as_json(alert: StoredAlert) -> dict[str, Any]:
    return {"id": alert.id, "at": alert.at, "kind": alert.kind, "subject": alert.subject, "state": alert.state,
            "message": alert.message, "delivery": alert.delivery}
