"""Runs: every plan, apply and drift check gets a number per environment and keeps its whole
output, beside its history record, so that `opsgit history --run N` and `opsgit server` show
what the terminal showed.

A run is a record (`run.json`: who triggered it, from where, on which commit, its status,
progress and result) and a log (every line the command printed, masked). While a run lives it
rewrites its record every second with a heartbeat; a run whose heartbeat stopped (the process
was killed) reads back as `interrupted`, never as running forever.

Stores, beside the state as the history is:
    local  `.opsgit/runs/<env>/<NNNNNN>.json` and `.log`; a number is taken by creating its record
           file with O_EXCL, so two runs never share one
    s3     `runs/<env>/<NNNNNN>/run.json`, created with `If-None-Match: *` for the same reason, and
           the log as numbered chunks under `runs/<env>/<NNNNNN>/log/` (S3 cannot append)
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from opsgit import awsclients, output
from opsgit.errors import UserError
from opsgit.secrets import redact, redact_data

HEARTBEAT_SECONDS = 1.0
# A record not rewritten for this long belongs to a process that is gone.
STALE_SECONDS = 10.0
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def _age(stamp: str | None) -> float:
    if not stamp:
        return float("inf")
    return (datetime.datetime.now(datetime.UTC) - datetime.datetime.fromisoformat(stamp)).total_seconds()


@dataclass(frozen=True)
class Run:
    """One run as its store keeps it."""

    env: str
    number: int
    record: Mapping[str, Any]

    @property
    def status(self) -> str:
        """The recorded status, except that a running run whose process is gone is `interrupted`."""
        status = str(self.record.get("status", "running"))
        if status == "running" and (_age(self.record.get("heartbeat_at")) > STALE_SECONDS or self._process_gone()):
            return "interrupted"
        return status

    @property
    def live(self) -> bool:
        return self.status == "running"

    def _process_gone(self) -> bool:
        trigger = self.record.get("trigger") or {}
        if trigger.get("host") != socket.gethostname() or not trigger.get("pid"):
            return False
        try:
            os.kill(int(trigger["pid"]), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError):
            return False
        return False

    def to_json(self) -> dict[str, Any]:
        return {**self.record, "env": self.env, "number": self.number, "status": self.status}


class RunStore(Protocol):
    """Where one environment's runs are kept."""

    # where, for messages
    location: str

    # a new run: its number, taken so that no other run has it, with `record` written
    def create(self, env: str, record: Mapping[str, Any]) -> int: ...

    # replace the run's record
    def update(self, env: str, number: int, record: Mapping[str, Any]) -> None: ...

    # add text to the run's log
    def append_log(self, env: str, number: int, text: str) -> None: ...

    # the run, or None
    def get(self, env: str, number: int) -> Run | None: ...

    # the run's log from character `offset` on
    def log(self, env: str, number: int, offset: int = 0) -> str: ...

    # the `limit` newest runs, newest first
    def list(self, env: str, limit: int = 50) -> list[Run]: ...


class LocalRuns:
    def __init__(self, root: Path) -> None:
        self.directory = root / ".opsgit" / "runs"
        self.location = str(self.directory)

    def _path(self, env: str, number: int, suffix: str) -> Path:
        return self.directory / env / f"{number:06d}{suffix}"

    def _numbers(self, env: str) -> list[int]:
        folder = self.directory / env
        if not folder.is_dir():
            return []
        return sorted(int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit())

    def create(self, env: str, record: Mapping[str, Any]) -> int:
        (self.directory / env).mkdir(parents=True, exist_ok=True)
        number = (self._numbers(env) or [0])[-1] + 1
        while True:
            try:
                fd = os.open(self._path(env, number, ".json"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another run took it a moment ago
                number += 1
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(json.dumps({**record, "number": number}, sort_keys=True))
            return number

    def update(self, env: str, number: int, record: Mapping[str, Any]) -> None:
        path = self._path(env, number, ".json")
        scratch = path.with_suffix(f".json.{os.getpid()}.{threading.get_ident()}")
        scratch.write_text(json.dumps({**record, "number": number}, sort_keys=True))
        os.replace(scratch, path)  # readers see the old record or the new one, never half

    def append_log(self, env: str, number: int, text: str) -> None:
        fd = os.open(self._path(env, number, ".log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as handle:
            handle.write(text)

    def get(self, env: str, number: int) -> Run | None:
        try:
            return Run(env, number, json.loads(self._path(env, number, ".json").read_text()))
        except (OSError, ValueError):
            return None

    def log(self, env: str, number: int, offset: int = 0) -> str:
        try:
            return self._path(env, number, ".log").read_text()[offset:]
        except OSError:
            return ""

    def list(self, env: str, limit: int = 50) -> list[Run]:
        runs = (self.get(env, n) for n in reversed(self._numbers(env)[-limit:]))
        return [run for run in runs if run is not None]


class S3Runs:
    def __init__(self, bucket: str, region: str | None) -> None:
        self.bucket = bucket
        self.region = region
        self.location = f"s3://{bucket}/runs/"
        self._chunks: dict[tuple[str, int], int] = {}

    @property
    def s3(self) -> Any:
        return awsclients.client("s3", self.region)

    def _key(self, env: str, number: int, name: str) -> str:
        return f"runs/{env}/{number:06d}/{name}"

    def _numbers(self, env: str) -> list[int]:
        numbers = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"runs/{env}/",
                                                                      Delimiter="/"):
            for prefix in page.get("CommonPrefixes", []):
                part = prefix["Prefix"].rstrip("/").rsplit("/", 1)[-1]
                if part.isdigit():
                    numbers.append(int(part))
        return sorted(numbers)

    def create(self, env: str, record: Mapping[str, Any]) -> int:
        from botocore.exceptions import ClientError

        number = (self._numbers(env) or [0])[-1] + 1
        while True:
            body = json.dumps({**record, "number": number}, sort_keys=True).encode()
            try:
                self.s3.put_object(Bucket=self.bucket, Key=self._key(env, number, "run.json"), Body=body,
                                   IfNoneMatch="*")
                return number
            except ClientError as error:
                if awsclients.error_code(error) not in awsclients.PRECONDITION_CODES:
                    raise
                number += 1

    def update(self, env: str, number: int, record: Mapping[str, Any]) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=self._key(env, number, "run.json"),
                           Body=json.dumps({**record, "number": number}, sort_keys=True).encode())

    def append_log(self, env: str, number: int, text: str) -> None:
        chunk = self._chunks.get((env, number), 0)
        self.s3.put_object(Bucket=self.bucket, Key=self._key(env, number, f"log/{chunk:06d}"), Body=text.encode())
        self._chunks[(env, number)] = chunk + 1

    def get(self, env: str, number: int) -> Run | None:
        from botocore.exceptions import ClientError

        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self._key(env, number, "run.json"))["Body"].read()
        except ClientError as error:
            if awsclients.error_code(error) in ("NoSuchKey", "404"):
                return None
            raise
        return Run(env, number, json.loads(body))

    def log(self, env: str, number: int, offset: int = 0) -> str:
        parts = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(env, number, "log/")):
            for item in page.get("Contents", []):
                parts.append(self.s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read().decode())
        return "".join(parts)[offset:]

    def list(self, env: str, limit: int = 50) -> list[Run]:
        runs = (self.get(env, n) for n in reversed(self._numbers(env)[-limit:]))
        return [run for run in runs if run is not None]


def run_store(state_settings: Mapping[str, Any], root: Path) -> RunStore:
    """The store beside the environment's state, as the history's is."""
    if state_settings.get("backend") == "s3":
        region = state_settings.get("region")
        return S3Runs(str(state_settings["bucket"]), str(region) if region else None)
    return LocalRuns(root)


def trigger() -> dict[str, Any]:
    """Who started this run and from where: the CLI, a CI job, or a pull request (with links)."""
    from opsgit.gitops.status import actions_run_url, pull_request_event
    from opsgit.locks.holder import holder_record

    env = os.environ
    who = holder_record("run")
    found: dict[str, Any] = {"who": who.get("who"), "host": who.get("host"), "pid": os.getpid(), "source": "cli"}
    if env.get("GITHUB_ACTIONS") == "true" or env.get("GITLAB_CI") == "true" or env.get("CI") == "true":
        found["source"] = "ci"
        url = actions_run_url(env) or env.get("CI_JOB_URL")
        if url:
            found["url"] = url
    pull_request = who.get("pull_request")
    with contextlib.suppress(UserError):  # an unreadable payload is --status's error to report, not a run's
        event = pull_request_event(env)
        if event is not None and event[1] is not None and env.get("GITHUB_REPOSITORY"):
            pull_request = f"{env['GITHUB_REPOSITORY']}#{event[1]}"  # pull_request_target too
    if pull_request:
        found["source"] = "pull_request"
        found["pull_request"] = pull_request
        number = pull_request.rsplit("#", 1)[-1] if "#" in pull_request else None
        if number and env.get("GITHUB_REPOSITORY"):
            server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
            found["pull_request_url"] = f"{server}/{env['GITHUB_REPOSITORY']}/pull/{number}"
    return found


@dataclass
class Recorder:
    """A run being recorded: every line opsgit prints goes to its log; its record is rewritten
    with a heartbeat and the progress every second; `finish` settles it."""

    store: RunStore
    env: str
    record: dict[str, Any]
    number: int = 0
    _pending: list[str] = field(default_factory=list)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def start(self) -> None:
        self.number = self.store.create(self.env, self.record)
        self.record["number"] = self.number
        self._thread = threading.Thread(target=self._beat, name=f"opsgit-run-{self.env}-{self.number}", daemon=True)
        self._thread.start()

    def line(self, text: str) -> None:
        masked = redact(_ANSI.sub("", text))  # said lines are masked already; lines given directly too
        with self._guard:
            self._pending.append(masked + "\n")

    def progress(self, done: int, total: int) -> None:
        with self._guard:
            self.record["progress"] = {"done": done, "total": total}

    def note(self, **values: Any) -> None:
        """Add to the record (summary, outputs, policy, drift, the status URL)."""
        with self._guard:
            self.record.update(redact_data(values))

    def _flush(self) -> None:
        with self._guard:
            text, self._pending = "".join(self._pending), []
            self.record["heartbeat_at"] = _now()
            record = dict(self.record)
        if text:
            self.store.append_log(self.env, self.number, text)
        self.store.update(self.env, self.number, record)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self._flush()
            except Exception:  # the store is unreachable this second: the next beat tries again
                continue

    def fail(self, message: str) -> None:
        """Settle it as errored, the error last in its log."""
        self.line(f"Error: {message}")
        self.finish("errored", error=message[:2000], summary=f"Error: {message[:300]}")

    def finish(self, status: str, **values: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.note(**values)
        with self._guard:
            self.record.update(status=status, finished_at=_now(),
                               duration_seconds=round(time.monotonic() - self._started, 3))
        self._flush()


def started_run(store: RunStore, env: str, kind: str, commit: str | None) -> Recorder:
    """A new, numbered run whose log is given line by line (`line`): for runs made side by side in
    one process (`plan --affected`), whose output would mix; `record_run` for the others."""
    now = _now()
    recorder = Recorder(store, env, redact_data({"env": env, "kind": kind, "status": "running", "started_at": now,
                                                 "heartbeat_at": now, "trigger": trigger(), "commit": commit}))
    try:
        recorder.start()
    except UserError:
        raise
    except Exception as error:
        # the state's store is the run's: its credentials and endpoint are the same problem
        raise awsclients.as_user_error(error) or UserError(
            f"cannot start a run record in {store.location}: {error}",
            hint="check that the history store is writable") from None
    return recorder


@contextlib.contextmanager
def record_run(store: RunStore, env: str, kind: str, commit: str | None) -> Iterator[Recorder]:
    """`with record_run(store, env, "apply", commit) as run:` — the run is numbered and its log
    captures everything opsgit prints until the block ends; an exception settles it as
    `errored` (or `interrupted` on Ctrl-C) unless the block settled it first."""
    recorder = started_run(store, env, kind, commit)
    untee = output.tee(recorder.line)
    try:
        yield recorder
    except KeyboardInterrupt:
        untee()
        if recorder.record.get("status") == "running":
            recorder.finish("interrupted", error="stopped by Ctrl-C")
        raise
    except BaseException as error:
        untee()
        if recorder.record.get("status") == "running":
            recorder.fail(str(error))
        raise
    untee()
    if recorder.record.get("status") == "running":
        recorder.finish("errored", error="the run ended without a result")
