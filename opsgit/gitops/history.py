"""Run and image history: every plan, apply and image build leaves a record beside the state.

Records go to a stream (`history` for runs, `images` for image builds) in the store that matches
the environment's state backend: local state keeps `.opsgit/<stream>/<env>.jsonl` (appended,
fsynced); S3 state keeps one object per record under `<stream>/<env>/` in the state bucket.
`opsgit history` and `opsgit images` read them back. Every record is masked before it is written.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from opsgit import awsclients, output
from opsgit.errors import UserError
from opsgit.locks.holder import holder_record
from opsgit.repo.values import Environment
from opsgit.secrets import redact_data

MAX_LOG = 20_000
RUNS = "history"
IMAGES = "images"


class HistoryStore(Protocol):
    """Where one environment's records are kept."""

    # where, for messages
    location: str

    # add one record durably
    def append(self, stream: str, env: str, entry: Mapping[str, Any]) -> None: ...

    # the records of `stream`, oldest first
    def read(self, stream: str, env: str) -> list[dict[str, Any]]: ...


class LocalHistory:
    def __init__(self, root: Path) -> None:
        self.directory = root / ".opsgit"
        self.location = str(self.directory)

    def append(self, stream: str, env: str, entry: Mapping[str, Any]) -> None:
        directory = self.directory / stream
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / f"{env}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as handle:
            handle.write(json.dumps(entry, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def read(self, stream: str, env: str) -> list[dict[str, Any]]:
        path = self.directory / stream / f"{env}.jsonl"
        if not path.exists():
            return []
        entries = []
        for line in path.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue  # a torn last line after a crash
        return entries


class S3History:
    def __init__(self, bucket: str, region: str | None) -> None:
        self.bucket = bucket
        self.region = region
        self.location = f"s3://{bucket}"

    def append(self, stream: str, env: str, entry: Mapping[str, Any]) -> None:
        key = f"{stream}/{env}/{entry['at']}-{entry['id']}.json"
        awsclients.client("s3", self.region).put_object(Bucket=self.bucket, Key=key,
                                                        Body=json.dumps(entry).encode())

    def read(self, stream: str, env: str) -> list[dict[str, Any]]:
        import botocore.exceptions

        from opsgit.providers.base import describe_error

        entries = []
        try:
            s3 = awsclients.client("s3", self.region)
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{stream}/{env}/"):
                for item in page.get("Contents", []):
                    entries.append(json.loads(s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise UserError(f"cannot read the {stream} of {env} from s3://{self.bucket}/{stream}/{env}/: "
                            f"{describe_error(error)}", hint="check the AWS credentials and endpoint") from None
        return sorted(entries, key=lambda e: str(e["at"]))


def history_store(state_settings: Mapping[str, Any], root: Path) -> HistoryStore:
    """The store beside the environment's state: its S3 bucket, or `.opsgit/` for local state."""
    if state_settings.get("backend") == "s3":
        region = state_settings.get("region")
        return S3History(str(state_settings["bucket"]), str(region) if region else None)
    return LocalHistory(root)


def record(store: HistoryStore, root: Path, env: str, *, kind: str, summary: str, result: str, duration: float,
           plan_document: Mapping[str, Any] | None = None, log: str = "",
           extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One plan or apply, with who ran it, where and on which commit (`extra`: what else this
    run must answer for, such as a policy override and its reason)."""
    who = holder_record(kind)
    if plan_document is not None:  # the same plan made twice hashes the same: its time is not part of it
        plan_document = {k: v for k, v in plan_document.items() if k != "timestamp"}
    entry = {
        "env": env, "kind": kind, "result": result, "summary": summary,
        "duration_seconds": round(duration, 3), "who": who.get("who"), "host": who.get("host"),
        "commit": who.get("commit") or head_commit(root), "pull_request": who.get("pull_request"),
        "plan_hash": hashlib.sha256(json.dumps(plan_document, sort_keys=True, default=str).encode()).hexdigest()
        if plan_document is not None else None,
        "log": log[-MAX_LOG:],
        **(extra or {}),
    }
    return append(store, RUNS, env, entry)


def record_unlock(store: HistoryStore, root: Path, env: str, *, who: str, holder: Mapping[str, Any], was: str,
                  via: str) -> dict[str, Any]:
    """A run lock removed by someone (`opsgit unlock`, the dashboard's Unlock): who, and whose it was."""
    where = "on the dashboard" if via == "dashboard" else "with opsgit unlock"
    return record(store, root, env, kind="unlock", summary=f"Unlocked by {who} {where} ({was})", result="unlocked",
                  duration=0.0, extra={"unlocked_by": who, "was_held_by": dict(holder), "via": via})


def append(store: HistoryStore, stream: str, env: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """Add one record (given an `id` and `at`) to `stream` of `env`, durably; secrets masked."""
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    stamped: dict[str, Any] = redact_data({"id": uuid.uuid4().hex, "at": now, **entry})
    store.append(stream, env, stamped)
    return stamped


def head_commit(root: Path) -> str | None:
    import subprocess

    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=False)
    except OSError:  # no git on this machine: a record without a commit
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def read_all(root: Path, environments: Mapping[str, Environment], stream: str, *,
             strict: bool) -> list[dict[str, Any]]:
    """Every environment's records of `stream`, oldest first. An environment whose store cannot
    be read is skipped with a warning, unless `strict` (one environment was asked for)."""
    entries: list[dict[str, Any]] = []
    for name, environment in sorted(environments.items()):
        try:
            entries.extend(history_store(environment.state, root).read(stream, name))
        except UserError as error:
            if strict:
                raise
            output.warn(f"{error}; listing the other environments")
    return sorted(entries, key=lambda e: str(e.get("at")))
