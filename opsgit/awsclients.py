"""One way to make AWS clients, for everything opsgit sends to AWS: the aws provider, the S3 state
backend, the S3 run lock, and S3 run and image history.

Credentials, region and endpoint come from boto3's own chain (so `AWS_PROFILE`,
`AWS_ACCESS_KEY_ID`, `AWS_DEFAULT_REGION` and `AWS_ENDPOINT_URL` work as for any AWS tool);
retries are botocore's (`AWS_RETRY_MODE`, `AWS_MAX_ATTEMPTS`; adaptive with 10 attempts unless
they say otherwise); every client has connect and read timeouts.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

from opsgit.errors import UserError

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0

PROBE_TIMEOUT = 3.0
_clients: dict[tuple[Any, ...], Any] = {}
_reachable: set[tuple[str, int]] = set()
_lock = threading.Lock()
CREDENTIALS_HINT = ("set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; for a local endpoint such as "
                    "moto_server, also AWS_ENDPOINT_URL")
# What AWS answers when the credentials themselves are the problem.
REFUSED_CREDENTIALS = frozenset({"InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken",
                                 "ExpiredTokenException", "UnrecognizedClientException", "AuthFailure",
                                 "InvalidAccessKeyId", "InvalidToken"})


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
    endpoint = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        _probe(endpoint)
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


def _probe(endpoint: str) -> None:
    """Fail in seconds, naming the endpoint, when a configured endpoint does not answer at all
    (botocore would retry a refused connection for half a minute first)."""
    parts = urlsplit(endpoint)
    address = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    if address in _reachable:
        return
    try:
        socket.create_connection(address, timeout=PROBE_TIMEOUT).close()
    except OSError as error:
        raise UserError(f"cannot reach the AWS endpoint {endpoint} (AWS_ENDPOINT_URL): "
                        f"{error.strerror or type(error).__name__}",
                        hint="start what serves it, such as moto_server, or fix AWS_ENDPOINT_URL") from None
    _reachable.add(address)


def as_user_error(error: BaseException) -> UserError | None:
    """The user's problem in an AWS failure — missing or refused credentials, no region, an
    endpoint that cannot be reached — as a one-line error with what to set; None for anything else.
    Classes are recognised by name, so this costs no botocore import."""
    names = {cls.__name__ for cls in type(error).__mro__ if cls.__module__.startswith("botocore")}
    if names & {"NoCredentialsError", "PartialCredentialsError", "ProfileNotFound", "CredentialRetrievalError"}:
        return UserError(f"no usable AWS credentials: {error}", hint=CREDENTIALS_HINT)
    if "NoRegionError" in names:
        return UserError("no AWS region", hint="set AWS_DEFAULT_REGION, or region: in the provider's settings")
    if names & {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"}:
        return UserError(f"cannot reach AWS: {error}",
                         hint="check AWS_ENDPOINT_URL (a local endpoint such as moto_server must be running) "
                              "and the network")
    if "ClientError" in names and error_code(error) in REFUSED_CREDENTIALS:
        return UserError(f"AWS refused the credentials ({error_code(error)})", hint=CREDENTIALS_HINT)
    return None


def error_code(error: BaseException) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(error, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


PRECONDITION_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
