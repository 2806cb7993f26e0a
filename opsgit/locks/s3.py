"""The S3 run lock: an object created with `If-None-Match: *`, so only one writer can create it.

Its body is the holder's record. The holder remembers the ETag it wrote: the lock is still held
while the object at the key has that ETag, and it is released with a conditional delete
(`If-Match`), so a holder never deletes a lock someone else took after force-unlocking it. A lock
older than `stale_after` (default 2 h) is reported as probably stale; `opsgit unlock` removes it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opsgit import awsclients
from opsgit.errors import ConfigError
from opsgit.locks import Locked
from opsgit.locks.holder import describe

DEFAULT_STALE_AFTER = 2 * 3600.0
POLL = 1.0


class S3Lock:
    check_interval = 1.0

    def __init__(self, settings: Mapping[str, Any], env: str, root: Path) -> None:
        if not settings.get("bucket"):
            raise ConfigError("lock backend s3 needs a bucket", hint="lock: {backend: s3, bucket: NAME}")
        self.env = env
        self.bucket = str(settings["bucket"])
        self.key = str(settings.get("key") or f"locks/{env}.lock")
        self.region = str(settings["region"]) if settings.get("region") else None
        self.stale_after = float(settings.get("stale_after", DEFAULT_STALE_AFTER))
        self.location = f"s3://{self.bucket}/{self.key}"
        self._etag: str | None = None

    @property
    def s3(self) -> Any:
        return awsclients.client("s3", self.region)

    def acquire(self, holder: Mapping[str, Any], timeout: float) -> None:
        from botocore.exceptions import ClientError

        deadline = time.monotonic() + timeout
        body = json.dumps({**holder, "acquired_epoch": time.time()}).encode()
        while True:
            try:
                written = self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=body, IfNoneMatch="*")
                self._etag = str(written["ETag"])
                return
            except ClientError as error:
                if awsclients.error_code(error) not in awsclients.PRECONDITION_CODES:
                    raise
            current = self.holder()
            if current is not None and time.monotonic() >= deadline:
                message = describe(self.env, current)
                age = time.time() - float(current.get("acquired_epoch", time.time()))
                if age > self.stale_after:
                    message += f"; the lock is {age / 3600:.1f} h old and probably stale"
                raise Locked(message, hint=f"wait with --lock-timeout, or `opsgit unlock --env {self.env}`")
            if current is not None:
                time.sleep(POLL)
            # else: released between our put and our read; try again at once

    def still_held(self) -> bool:
        from botocore.exceptions import ClientError

        if self._etag is None:
            return False
        try:
            found = self.s3.head_object(Bucket=self.bucket, Key=self.key)
        except ClientError as error:
            if awsclients.error_code(error) in awsclients.MISSING_CODES:
                return False
            raise
        return str(found["ETag"]) == self._etag

    def release(self) -> None:
        from botocore.exceptions import ClientError

        etag, self._etag = self._etag, None
        if etag is not None:
            with contextlib.suppress(ClientError):  # not ours any more, or gone: nothing to give back
                self.s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=etag)

    def holder(self) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        except ClientError as error:
            if awsclients.error_code(error) in awsclients.MISSING_CODES:
                return None
            raise
        try:
            data = json.loads(body)
        except ValueError:
            return {"value": body.decode("utf-8", "replace")[:200]}
        return dict(data) if isinstance(data, dict) else {"value": data}

    def force_unlock(self) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=self.key)
