"""One way to make AWS clients, for everything opsgit sends to AWS: the aws provider, the S3 state
backend, the S3 run lock, and S3 run and image history.

Credentials, region and endpoint come from boto3's own chain (so `AWS_PROFILE`,
`AWS_ACCESS_KEY_ID`, `AWS_DEFAULT_REGION` and `AWS_ENDPOINT_URL` work as for any AWS tool);
retries are botocore's (`AWS_RETRY_MODE`, `AWS_MAX_ATTEMPTS`; adaptive with 10 attempts unless
they say otherwise); every client has connect and read timeouts.
"""

from __future__ import annotations

import os
import threading
from typing import Any

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0

_clients: dict[tuple[Any, ...], Any] = {}
_lock = threading.Lock()


def retries() -> dict[str, Any]:
    """botocore's retry settings: adaptive with 10 attempts (throttling is normal when a plan reads
    hundreds of resources), unless AWS_RETRY_MODE / AWS_MAX_ATTEMPTS say otherwise."""
    return {"mode": os.environ.get("AWS_RETRY_MODE") or "adaptive",
            "max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS") or 10)}


def client(service: str, region: str | None = None) -> Any:
    """The shared client of `service` in `region` (None: boto3's default region). boto3 clients
    are safe to share between threads; creating them is not, so creation is serialised. The AWS_
    variables are part of the key: a client made before they changed is not handed out after."""
    key = (service, region or None, tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))))
    with _lock:
        found = _clients.get(key)
        if found is None:
            import boto3
            from botocore.config import Config

            found = boto3.session.Session().client(
                service, region_name=region or None,
                config=Config(retries=retries(), connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT))
            _clients[key] = found
        return found


def error_code(error: BaseException) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(error, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


PRECONDITION_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
