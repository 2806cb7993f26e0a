"""Run locks, one per environment, chosen by `lock: {backend: ...}` in env.yaml.

    local   a file lock beside the state (`.opsgit/state/<env>.lock`)
    consul  a session with a TTL, renewed while the run lives, holding `opsgit/locks/<env>/.lock`
            (Consul's own lock layout); a crashed holder's lock frees itself when its session ends
    s3      an object written with `If-None-Match: *` beside the state; one older than
            `stale_after` (default 2h) is reported as stale, and `opsgit unlock` removes it

Every lock records its holder (who, host, command, commit, pull request, since), so that a
blocked run can say `environment prod is locked by org/ops#2488 (alice, apply, since 12:01 UTC)`.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from opsgit.engine.runlock import Locked, holder_info, local_run_lock
from opsgit.errors import UserError

DEFAULT_STALE_AFTER = 2 * 3600.0


def holder_record(command: str) -> dict[str, str]:
    record = holder_info(command)
    env = os.environ
    if env.get("GITHUB_SHA") or env.get("CI_COMMIT_SHA"):
        record["commit"] = env.get("GITHUB_SHA") or env.get("CI_COMMIT_SHA", "")
    ref = env.get("GITHUB_REF", "")
    if ref.startswith("refs/pull/") and env.get("GITHUB_REPOSITORY"):
        record["pull_request"] = f"{env['GITHUB_REPOSITORY']}#{ref.split('/')[2]}"
    elif env.get("CI_MERGE_REQUEST_IID") and env.get("CI_PROJECT_PATH"):
        record["pull_request"] = f"{env['CI_PROJECT_PATH']}!{env['CI_MERGE_REQUEST_IID']}"
    record["started_at"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return record


def describe(env: str, holder: Mapping[str, Any]) -> str:
    who = holder.get("pull_request") or holder.get("who", "someone")
    details = ", ".join(str(holder[k]) for k in ("who", "command") if holder.get(k) and holder.get(k) != who)
    since = holder.get("since", "")
    return f"environment {env} is locked by {who}" + (f" ({details}, since {since})" if details else "")


@contextlib.contextmanager
def run_lock(settings: Mapping[str, Any], env: str, root: Path, command: str,
             timeout: float = 0.0) -> Iterator[dict[str, str]]:
    backend = str(settings.get("backend", "local"))
    holder = holder_record(command)
    if backend == "local":
        with local_run_lock(root / ".opsgit" / "state", env, command, timeout):
            yield holder
    elif backend == "consul":
        from opsgit.consul.client import Consul
        from opsgit.consul.lock import LockTimeout, consul_lock

        told: list[str] = []
        try:
            with consul_lock(Consul(), f"opsgit/locks/{env}", holder, timeout or 0.01,
                             blocked=lambda h: told.append(describe(env, h))):
                yield holder
        except LockTimeout:
            raise Locked(told[0] if told else f"environment {env} is locked",
                         hint="wait with --lock-timeout 10m, or `opsgit unlock --env " + env + "`") from None
    elif backend == "s3":
        with _s3_lock(settings, env, holder, timeout):
            yield holder
    else:
        raise UserError(f"unknown lock backend {backend!r}", hint="use local, consul or s3")


def _s3_location(settings: Mapping[str, Any], env: str) -> tuple[str, str]:
    bucket = settings.get("bucket")
    if not bucket:
        raise UserError("lock backend s3 needs a bucket", hint="lock: {backend: s3, bucket: NAME}")
    return str(bucket), str(settings.get("key") or f"locks/{env}.lock")


@contextlib.contextmanager
def _s3_lock(settings: Mapping[str, Any], env: str, holder: dict[str, str], timeout: float) -> Iterator[None]:
    import boto3
    from botocore.exceptions import ClientError

    bucket, key = _s3_location(settings, env)
    s3 = boto3.client("s3")
    deadline = time.monotonic() + timeout
    stale_after = float(settings.get("stale_after", DEFAULT_STALE_AFTER))
    body = json.dumps({**holder, "acquired_epoch": time.time()}).encode()
    while True:
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
            break
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412",
                                                                   "ConditionalRequestConflict"):
                raise
        current = s3_holder(settings, env) or {}
        if time.monotonic() >= deadline:
            message = describe(env, current)
            age = time.time() - float(current.get("acquired_epoch", time.time()))
            if age > stale_after:
                message += f"; the lock is {age / 3600:.1f} h old and probably stale"
            raise Locked(message, hint=f"wait with --lock-timeout, or `opsgit unlock --env {env}`")
        time.sleep(1.0)
    try:
        yield
    finally:
        with contextlib.suppress(ClientError):
            s3.delete_object(Bucket=bucket, Key=key)


def s3_holder(settings: Mapping[str, Any], env: str) -> dict[str, Any] | None:
    import boto3
    from botocore.exceptions import ClientError

    bucket, key = _s3_location(settings, env)
    try:
        return dict(json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()))
    except ClientError:
        return None


def current_holder(settings: Mapping[str, Any], env: str, root: Path) -> dict[str, Any] | None:
    backend = str(settings.get("backend", "local"))
    if backend == "local":
        path = root / ".opsgit" / "state" / f"{env}.lock"
        try:
            data = json.loads(path.read_text() or "null")
        except (OSError, ValueError):
            return None
        return dict(data) if data else None
    if backend == "consul":
        from opsgit.consul.client import Consul
        from opsgit.consul.lock import holder_of

        _, pair = Consul().kv.get(f"opsgit/locks/{env}/.lock")
        return holder_of(pair) if pair is not None and pair.session else None
    return s3_holder(settings, env)


def force_unlock(settings: Mapping[str, Any], env: str, root: Path) -> None:
    backend = str(settings.get("backend", "local"))
    if backend == "local":
        holder = current_holder(settings, env, root) or {}
        raise UserError(f"the local lock of {env} is held by a live process (pid {holder.get('pid', '?')} on "
                        f"{holder.get('host', '?')}); it frees itself when that process ends",
                        hint="stop that process; a local lock cannot outlive its holder")
    if backend == "consul":
        from opsgit.consul.client import Consul

        consul = Consul()
        key = f"opsgit/locks/{env}/.lock"
        _, pair = consul.kv.get(key)
        if pair is not None and pair.session:
            # Release first: destroying the holder's session would start Consul's lock-delay.
            consul.kv.put(key, pair.value, flags=pair.flags, release=pair.session)
            consul.session.destroy(pair.session)
        consul.kv.delete(key)
        return
    import boto3

    bucket, key = _s3_location(settings, env)
    boto3.client("s3").delete_object(Bucket=bucket, Key=key)
