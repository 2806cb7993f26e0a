"""Run and image history: every plan, apply and image build leaves a record beside the state.

Records go to a stream (`history` for runs, `images` for image builds). Local state keeps
`.opsgit/<stream>/<env>.jsonl` (appended, fsynced); S3 state keeps one object per record under
`<stream>/<env>/` in the state bucket. `opsgit history` and `opsgit images` read them back.
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

from opsgit import output
from opsgit.errors import UserError
from opsgit.gitops.locks import holder_record
from opsgit.providers.base import describe_error
from opsgit.repo.values import Environment
from opsgit.secrets import redact_data

MAX_LOG = 20_000
RUNS = "history"
IMAGES = "images"


def record(root: Path, state_settings: Mapping[str, Any], env: str, *, kind: str, summary: str, result: str,
           duration: float, plan_document: Mapping[str, Any] | None = None, log: str = "") -> dict[str, Any]:
    who = holder_record(kind)
    entry = {
        "id": uuid.uuid4().hex, "env": env, "kind": kind, "result": result, "summary": summary,
        "duration_seconds": round(duration, 3), "who": who.get("who"), "host": who.get("host"),
        "commit": who.get("commit") or head_commit(root), "pull_request": who.get("pull_request"),
        "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "plan_hash": hashlib.sha256(json.dumps(plan_document, sort_keys=True, default=str).encode()).hexdigest()
        if plan_document is not None else None,
        "log": log[-MAX_LOG:],
    }
    return append(root, state_settings, RUNS, env, entry)


def append(root: Path, state_settings: Mapping[str, Any], stream: str, env: str,
           entry: dict[str, Any]) -> dict[str, Any]:
    """Add one record (with `id` and `at`) to `stream` of `env`, durably; secrets masked."""
    entry = redact_data(entry)
    if state_settings.get("backend") == "s3":
        import boto3

        key = f"{stream}/{env}/{entry['at']}-{entry['id']}.json"
        boto3.client("s3").put_object(Bucket=str(state_settings["bucket"]), Key=key, Body=json.dumps(entry).encode())
        return entry
    directory = root / ".opsgit" / stream
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / f"{env}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return entry


def head_commit(root: Path) -> str | None:
    import subprocess

    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=False)
    except OSError:  # no git on this machine: a record without a commit
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def read(root: Path, state_settings: Mapping[str, Any], env: str, stream: str = RUNS) -> list[dict[str, Any]]:
    if state_settings.get("backend") == "s3":
        import boto3
        import botocore.exceptions

        bucket = str(state_settings["bucket"])
        entries = []
        try:
            s3 = boto3.client("s3")
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{stream}/{env}/"):
                for item in page.get("Contents", []):
                    entries.append(json.loads(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            raise UserError(f"cannot read the {stream} of {env} from s3://{bucket}/{stream}/{env}/: "
                            f"{describe_error(error)}", hint="check the AWS credentials and endpoint") from None
        return sorted(entries, key=lambda e: str(e["at"]))
    path = root / ".opsgit" / stream / f"{env}.jsonl"
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue  # a torn last line after a crash
    return entries


def read_all(root: Path, environments: Mapping[str, Environment], stream: str, *,
             strict: bool) -> list[dict[str, Any]]:
    """Every environment's records of `stream`, oldest first. An environment whose store cannot
    be read is skipped with a warning, unless `strict` (one environment was asked for)."""
    entries: list[dict[str, Any]] = []
    for name, environment in sorted(environments.items()):
        try:
            entries.extend(read(root, environment.state, name, stream))
        except UserError as error:
            if strict:
                raise
            output.warn(f"{error}; listing the other environments")
    return sorted(entries, key=lambda e: str(e.get("at")))
