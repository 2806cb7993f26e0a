"""Run history: every plan and apply leaves a record beside the state.

Local state keeps `.opsgit/history/<env>.jsonl` (appended, fsynced); S3 state keeps one object per
run under `history/<env>/` in the state bucket. `opsgit history` reads them back.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opsgit.gitops.locks import holder_record

MAX_LOG = 20_000


def record(root: Path, state_settings: Mapping[str, Any], env: str, *, kind: str, summary: str, result: str,
           duration: float, plan_document: Mapping[str, Any] | None = None, log: str = "") -> dict[str, Any]:
    who = holder_record(kind)
    entry = {
        "id": uuid.uuid4().hex, "env": env, "kind": kind, "result": result, "summary": summary,
        "duration_seconds": round(duration, 3), "who": who.get("who"), "host": who.get("host"),
        "commit": who.get("commit") or _head(root), "pull_request": who.get("pull_request"),
        "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "plan_hash": hashlib.sha256(json.dumps(plan_document, sort_keys=True, default=str).encode()).hexdigest()
        if plan_document is not None else None,
        "log": log[-MAX_LOG:],
    }
    if state_settings.get("backend") == "s3":
        import boto3

        key = f"history/{env}/{entry['at']}-{entry['id']}.json"
        boto3.client("s3").put_object(Bucket=str(state_settings["bucket"]), Key=key, Body=json.dumps(entry).encode())
        return entry
    directory = root / ".opsgit" / "history"
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / f"{env}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return entry


def _head(root: Path) -> str | None:
    import subprocess

    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=False)
    return result.stdout.strip() or None if result.returncode == 0 else None


def read(root: Path, state_settings: Mapping[str, Any], env: str) -> list[dict[str, Any]]:
    if state_settings.get("backend") == "s3":
        import boto3

        s3 = boto3.client("s3")
        bucket = str(state_settings["bucket"])
        entries = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"history/{env}/"):
            for item in page.get("Contents", []):
                entries.append(json.loads(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()))
        return sorted(entries, key=lambda e: str(e["at"]))
    path = root / ".opsgit" / "history" / f"{env}.jsonl"
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue  # a torn last line after a crash
    return entries
