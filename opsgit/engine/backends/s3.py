"""S3 state: `s3://BUCKET/KEY` (a versioned bucket), plus one small journal object per change.

Every write is conditional, so two writers can never silently overwrite each other: a journal
object is created with `If-None-Match: *` (two runs recording the same serial: the second gets
412), and the compacted state replaces the object read at load with `If-Match: <its ETag>`
(or `If-None-Match: *` for a new state). A refused write is an error that says so; nothing is
retried over someone else's state.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opsgit import awsclients
from opsgit.engine.state import ResourceState, State, journal_entry, replay
from opsgit.errors import ConfigError, UserError


class StateConflict(UserError):
    """A conditional write of the state was refused: someone else wrote it meanwhile."""


class S3Backend:
    def __init__(self, settings: Mapping[str, Any], env: str, root: Path) -> None:
        if not settings.get("bucket"):
            raise ConfigError("state backend s3 needs a bucket", hint="state: {backend: s3, bucket: NAME, key: ...}")
        self.bucket = str(settings["bucket"])
        self.key = str(settings.get("key") or f"{env}/state.json")
        self.journal_prefix = f"{self.key}.journal/"
        self.region = settings.get("region")
        self.location = f"s3://{self.bucket}/{self.key}"
        self.etag: str | None = None

    @property
    def s3(self) -> Any:
        return awsclients.client("s3", str(self.region) if self.region else None)

    def _missing(self, error: Exception) -> bool:
        return awsclients.error_code(error) in awsclients.MISSING_CODES

    def _precondition(self, error: Exception) -> bool:
        return awsclients.error_code(error) in awsclients.PRECONDITION_CODES

    def load(self) -> State:
        from botocore.exceptions import ClientError

        state = State.new()
        self.etag = None
        try:
            answer = self.s3.get_object(Bucket=self.bucket, Key=self.key)
            self.etag = answer["ETag"]
            state = State.from_json(json.loads(answer["Body"].read()))
        except ClientError as error:
            if not self._missing(error):
                raise UserError(f"cannot read the state at {self.location}: {error}") from None
        except (ValueError, KeyError, TypeError) as error:
            raise UserError(f"the state at {self.location} is unreadable: {error}",
                            hint="restore an earlier version of the object (the bucket is versioned)") from None
        return self._replay(state)

    def _journal_keys(self) -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.journal_prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(keys)

    def _replay(self, state: State) -> State:
        keys = self._journal_keys()
        entries = (json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()) for key in keys)
        return replay(state, entries, adopt_lineage=self.etag is None)

    def record(self, lineage: str, serial: int, address: str, resource: ResourceState | None) -> None:
        from botocore.exceptions import ClientError

        body = json.dumps(journal_entry(lineage, serial, address, resource)).encode()
        try:
            self.s3.put_object(Bucket=self.bucket, Key=f"{self.journal_prefix}{serial:012d}", Body=body,
                               IfNoneMatch="*", ServerSideEncryption="AES256")
        except ClientError as error:
            if self._precondition(error):
                raise StateConflict(f"another run is writing the state at {self.location} (serial {serial} exists)",
                                    hint="only one apply may run per environment: check the run lock") from None
            raise

    def compact(self, state: State) -> None:
        from botocore.exceptions import ClientError

        body = (json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n").encode()
        condition = {"IfMatch": self.etag} if self.etag else {"IfNoneMatch": "*"}
        try:
            answer = self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=body, ServerSideEncryption="AES256",
                                        **condition)
        except ClientError as error:
            if self._precondition(error):
                raise StateConflict(f"the state at {self.location} was changed by another writer since it was read",
                                    hint="nothing was overwritten; run the command again") from None
            raise
        self.etag = answer["ETag"]
        for key in self._journal_keys():
            if int(key.rsplit("/", 1)[1]) <= state.serial:
                self.s3.delete_object(Bucket=self.bucket, Key=key)

    def close(self) -> None:
        return None
