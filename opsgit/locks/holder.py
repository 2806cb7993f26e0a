"""Who holds a run lock: the record every backend stores, and the sentence that tells it."""

from __future__ import annotations

import datetime
import getpass
import os
import socket
from collections.abc import Mapping
from typing import Any


def holder_record(command: str) -> dict[str, str]:
    """This run as a lock holder: who, where, which command, commit and pull request, since when."""
    env = os.environ
    now = datetime.datetime.now(datetime.UTC)
    record = {"who": env.get("GITHUB_ACTOR") or env.get("GITLAB_USER_LOGIN") or getpass.getuser(),
              "host": socket.gethostname(), "command": command, "pid": str(os.getpid()),
              "since": now.strftime("%Y-%m-%d %H:%M UTC"), "started_at": now.isoformat(timespec="seconds")}
    if env.get("GITHUB_SHA") or env.get("CI_COMMIT_SHA"):
        record["commit"] = env.get("GITHUB_SHA") or env.get("CI_COMMIT_SHA", "")
    ref = env.get("GITHUB_REF", "")
    if ref.startswith("refs/pull/") and env.get("GITHUB_REPOSITORY"):
        record["pull_request"] = f"{env['GITHUB_REPOSITORY']}#{ref.split('/')[2]}"
    elif env.get("CI_MERGE_REQUEST_IID") and env.get("CI_PROJECT_PATH"):
        record["pull_request"] = f"{env['CI_PROJECT_PATH']}!{env['CI_MERGE_REQUEST_IID']}"
    return record


def describe(env: str, holder: Mapping[str, Any] | None, *, local: bool = False) -> str:
    """`environment prod is locked by org/ops#2488 (alice, apply, since 2026-12-01 12:01 UTC)`; a
    local lock, which only a process on this machine can hold, names the user and the host:
    `environment dev is locked by alice (apply on build-7, since ...)`."""
    holder = holder or {}
    if local:
        return (f"environment {env} is locked by {holder.get('who', '?')} ({holder.get('command', '?')} on "
                f"{holder.get('host', '?')}, since {holder.get('since', '?')})")
    who = holder.get("pull_request") or holder.get("who") or "another run"
    details = [str(holder[k]) for k in ("who", "command") if holder.get(k) and holder.get(k) != who]
    if holder.get("since"):
        details.append(f"since {holder['since']}")
    return f"environment {env} is locked by {who}" + (f" ({', '.join(details)})" if details else "")
