"""The Consul HTTP API client.

    consul = Consul()                              # CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, TLS variables
    index, pair = consul.kv.get("service/binstore/redis_addr")
    index, pair = consul.kv.get("service/binstore/redis_addr", index=index, wait=60)   # blocking
    consul.kv.put("service/binstore/redis_addr", "10.0.0.7:6379", cas=pair.modify_index)

Every call has a timeout (a blocking query adds its wait and Consul's jitter); connection errors
and 5xx answers to reads are retried with exponential backoff; errors are `ConsulError`s that
keep the request and the response.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opsgit.consul.durations import format_duration
from opsgit.consul.transport import DEFAULT_READ_TIMEOUT, Request, RequestsTransport, Response, Transport
from opsgit.errors import ConsulError, ConsulUnavailable

DEFAULT_ADDRESS = "127.0.0.1:8500"
RETRYABLE = (500, 502, 503, 504, 429)


@dataclass(frozen=True)
class KVPair:
    key: str
    value: bytes | None
    flags: int = 0
    create_index: int = 0
    modify_index: int = 0
    lock_index: int = 0
    session: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KVPair:
        raw = data.get("Value")
        return cls(key=data["Key"], value=base64.b64decode(raw) if raw is not None else None,
                   flags=int(data.get("Flags") or 0), create_index=int(data.get("CreateIndex") or 0),
                   modify_index=int(data.get("ModifyIndex") or 0), lock_index=int(data.get("LockIndex") or 0),
                   session=data.get("Session") or None)

    @property
    def text(self) -> str:
        return (self.value or b"").decode("utf-8", errors="replace")


def address_from_environment() -> str:
    address = os.environ.get("CONSUL_HTTP_ADDR") or DEFAULT_ADDRESS
    if address.startswith(("http://", "https://")):
        return address
    tls = os.environ.get("CONSUL_HTTP_SSL", "").lower() in ("1", "true", "yes")
    return ("https://" if tls else "http://") + address


def _verify_from_environment() -> bool | str:
    if os.environ.get("CONSUL_HTTP_SSL_VERIFY", "").lower() in ("0", "false", "no"):
        return False
    return os.environ.get("CONSUL_CACERT") or True


class Consul:
    def __init__(self, address: str | None = None, *, token: str | None = None, transport: Transport | None = None,
                 retries: int = 3, backoff: float = 0.1, read_timeout: float = DEFAULT_READ_TIMEOUT) -> None:
        self.address = address if address and "://" in address else (
            "http://" + address if address else address_from_environment())
        self.token = token if token is not None else os.environ.get("CONSUL_HTTP_TOKEN") or None
        if transport is None:
            cert = None
            if os.environ.get("CONSUL_CLIENT_CERT") and os.environ.get("CONSUL_CLIENT_KEY"):
                cert = (os.environ["CONSUL_CLIENT_CERT"], os.environ["CONSUL_CLIENT_KEY"])
            transport = RequestsTransport(self.address, verify=_verify_from_environment(), cert=cert)
        self.transport = transport
        self.retries = retries
        self.backoff = backoff
        self.read_timeout = read_timeout
        self.kv = KV(self)
        self.session = Sessions(self)
        self.catalog = Catalog(self)
        self.health = Health(self)
        self.agent = Agent(self)
        self.status = Status(self)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Consul:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the one way requests go out ---------------------------------------------------------

    def request(self, method: str, path: str, params: Iterable[tuple[str, str]] = (), body: bytes | None = None,
                *, expect: Sequence[int] = (200,), wait: float | None = None) -> Response:
        headers: list[tuple[str, str]] = []
        if self.token:
            headers.append(("X-Consul-Token", self.token))
        if body is not None:
            headers.append(("Content-Type", "application/octet-stream"))
        timeout = self.read_timeout + (wait * 1.1 + 1 if wait else 0)  # Consul adds up to wait/16 of jitter
        request = Request(method, path, tuple(params), body, tuple(headers), timeout)
        attempt = 0
        while True:
            try:
                response = self.transport.handle(request)
            except ConsulUnavailable:
                if attempt >= self.retries:
                    raise
            else:
                if response.status in expect:
                    return response
                retry = response.status in RETRYABLE and (method == "GET" or response.status != 500)
                if not retry or attempt >= self.retries:
                    raise _error(request, response)
            time.sleep(self.backoff * (2 ** attempt))
            attempt += 1

    def get_json(self, path: str, params: Iterable[tuple[str, str]] = (), *, index: int | None = None,
                 wait: float | None = None, allow_404: bool = False) -> tuple[int, Any]:
        query = list(params)
        if index:
            query.append(("index", str(index)))
            if wait is not None:
                query.append(("wait", format_duration(wait)))
        response = self.request("GET", path, query, expect=(200, 404) if allow_404 else (200,),
                                wait=wait if index else None)
        if response.status == 404:
            return response.index, None
        return response.index, json.loads(response.body) if response.body else None

    def put_json(self, path: str, payload: Any = None, params: Iterable[tuple[str, str]] = ()) -> Any:
        body = json.dumps(payload).encode() if payload is not None else None
        response = self.request("PUT", path, params, body)
        return json.loads(response.body) if response.body.strip() else None


def _error(request: Request, response: Response) -> ConsulError:
    detail = " ".join(response.text.split())[:200] or "no detail"
    hint = None
    if response.status == 403:
        hint = "set CONSUL_HTTP_TOKEN to a token with access"
    return ConsulError(f"Consul refused {request.describe()}: {response.status} {detail}", request=request,
                       response=response, hint=hint)


def _flag(name: str, on: bool) -> list[tuple[str, str]]:
    return [(name, "")] if on else []


class KV:
    def __init__(self, consul: Consul) -> None:
        self.consul = consul

    def get(self, key: str, *, index: int | None = None, wait: float | None = None, consistent: bool = False,
            stale: bool = False) -> tuple[int, KVPair | None]:
        params = _flag("consistent", consistent) + _flag("stale", stale)
        found, data = self.consul.get_json(f"/v1/kv/{key.lstrip('/')}", params, index=index, wait=wait,
                                           allow_404=True)
        return found, KVPair.from_json(data[0]) if data else None

    def tree(self, prefix: str, *, index: int | None = None, wait: float | None = None,
             consistent: bool = False) -> tuple[int, list[KVPair]]:
        params = [("recurse", ""), *_flag("consistent", consistent)]
        found, data = self.consul.get_json(f"/v1/kv/{prefix.lstrip('/')}", params, index=index, wait=wait,
                                           allow_404=True)
        return found, [KVPair.from_json(item) for item in data or []]

    def keys(self, prefix: str = "", *, separator: str | None = None, index: int | None = None,
             wait: float | None = None) -> tuple[int, list[str]]:
        params = [("keys", "")] + ([("separator", separator)] if separator else [])
        found, data = self.consul.get_json(f"/v1/kv/{prefix.lstrip('/')}", params, index=index, wait=wait,
                                           allow_404=True)
        return found, list(data or [])

    def put(self, key: str, value: bytes | str | None, *, flags: int | None = None, cas: int | None = None,
            acquire: str | None = None, release: str | None = None) -> bool:
        params: list[tuple[str, str]] = []
        if flags is not None:
            params.append(("flags", str(flags)))
        if cas is not None:
            params.append(("cas", str(cas)))
        if acquire is not None:
            params.append(("acquire", acquire))
        if release is not None:
            params.append(("release", release))
        body = value.encode("utf-8") if isinstance(value, str) else (value or b"")
        response = self.consul.request("PUT", f"/v1/kv/{key.lstrip('/')}", params, body)
        return bool(json.loads(response.body))

    def delete(self, key: str, *, recurse: bool = False, cas: int | None = None) -> bool:
        params = _flag("recurse", recurse) + ([("cas", str(cas))] if cas is not None else [])
        response = self.consul.request("DELETE", f"/v1/kv/{key.lstrip('/')}", params)
        return bool(json.loads(response.body)) if response.body.strip() else True

    def txn(self, operations: list[dict[str, Any]]) -> tuple[bool, dict[str, Any]]:
        """Run a transaction: (committed, body). A rolled-back transaction (409) is not an error
        of the call: its body says which operation failed."""
        response = self.consul.request("PUT", "/v1/txn", (), json.dumps(operations).encode(), expect=(200, 409))
        return response.status == 200, json.loads(response.body)


class Sessions:
    def __init__(self, consul: Consul) -> None:
        self.consul = consul

    def create(self, *, name: str | None = None, ttl: float | None = None, behavior: str = "release",
               lock_delay: float | None = None, checks: list[str] | None = None, node: str | None = None,
               node_checks: list[str] | None = None) -> str:
        """`checks` is the older `Checks` field, `node_checks` today's `NodeChecks`; Consul's default
        when neither is given is `["serfHealth"]`, and `[]` ties the session to no check."""
        payload: dict[str, Any] = {"Behavior": behavior}
        if name:
            payload["Name"] = name
        if ttl is not None:
            payload["TTL"] = format_duration(ttl)
        if lock_delay is not None:
            payload["LockDelay"] = format_duration(lock_delay)
        if checks is not None:
            payload["Checks"] = checks
        if node_checks is not None:
            payload["NodeChecks"] = node_checks
        if node:
            payload["Node"] = node
        return str(self.consul.put_json("/v1/session/create", payload)["ID"])

    def renew(self, session: str) -> dict[str, Any] | None:
        """The renewed session, or None when it no longer exists (expired or destroyed)."""
        try:
            response = self.consul.request("PUT", f"/v1/session/renew/{session}")
        except ConsulError as error:
            if error.status == 404:
                return None
            raise
        entries = json.loads(response.body)
        return entries[0] if entries else None

    def destroy(self, session: str) -> bool:
        return bool(self.consul.put_json(f"/v1/session/destroy/{session}"))

    def info(self, session: str, *, index: int | None = None,
             wait: float | None = None) -> tuple[int, dict[str, Any] | None]:
        found, data = self.consul.get_json(f"/v1/session/info/{session}", index=index, wait=wait)
        return found, data[0] if data else None

    def all(self, *, index: int | None = None, wait: float | None = None) -> tuple[int, list[dict[str, Any]]]:
        found, data = self.consul.get_json("/v1/session/list", index=index, wait=wait)
        return found, data or []


class Catalog:
    def __init__(self, consul: Consul) -> None:
        self.consul = consul

    def register(self, node: str, address: str, *, service: dict[str, Any] | None = None,
                 check: dict[str, Any] | None = None, node_meta: dict[str, str] | None = None) -> bool:
        payload: dict[str, Any] = {"Node": node, "Address": address}
        if service:
            payload["Service"] = service
        if check:
            payload["Check"] = check
        if node_meta:
            payload["NodeMeta"] = node_meta
        return bool(self.consul.put_json("/v1/catalog/register", payload))

    def deregister(self, node: str, *, service_id: str | None = None, check_id: str | None = None) -> bool:
        payload: dict[str, Any] = {"Node": node}
        if service_id:
            payload["ServiceID"] = service_id
        if check_id:
            payload["CheckID"] = check_id
        return bool(self.consul.put_json("/v1/catalog/deregister", payload))

    def services(self, *, index: int | None = None, wait: float | None = None) -> tuple[int, dict[str, list[str]]]:
        found, data = self.consul.get_json("/v1/catalog/services", index=index, wait=wait)
        return found, data or {}

    def service(self, name: str, *, tag: str | None = None, index: int | None = None,
                wait: float | None = None) -> tuple[int, list[dict[str, Any]]]:
        params = [("tag", tag)] if tag else []
        found, data = self.consul.get_json(f"/v1/catalog/service/{name}", params, index=index, wait=wait)
        return found, data or []

    def nodes(self, *, index: int | None = None, wait: float | None = None) -> tuple[int, list[dict[str, Any]]]:
        found, data = self.consul.get_json("/v1/catalog/nodes", index=index, wait=wait)
        return found, data or []

    def node(self, name: str, *, index: int | None = None,
             wait: float | None = None) -> tuple[int, dict[str, Any] | None]:
        found, data = self.consul.get_json(f"/v1/catalog/node/{name}", index=index, wait=wait)
        return found, data

    def datacenters(self) -> list[str]:
        return list(self.consul.get_json("/v1/catalog/datacenters")[1] or [])


class Health:
    def __init__(self, consul: Consul) -> None:
        self.consul = consul

    def service(self, name: str, *, passing: bool = False, tag: str | None = None, dc: str | None = None,
                index: int | None = None, wait: float | None = None) -> tuple[int, list[dict[str, Any]]]:
        params = _flag("passing", passing) + ([("tag", tag)] if tag else []) + ([("dc", dc)] if dc else [])
        found, data = self.consul.get_json(f"/v1/health/service/{name}", params, index=index, wait=wait)
        return found, data or []

    def checks(self, service: str, *, index: int | None = None,
               wait: float | None = None) -> tuple[int, list[dict[str, Any]]]:
        found, data = self.consul.get_json(f"/v1/health/checks/{service}", index=index, wait=wait)
        return found, data or []

    def state(self, state: str, *, index: int | None = None,
              wait: float | None = None) -> tuple[int, list[dict[str, Any]]]:
        found, data = self.consul.get_json(f"/v1/health/state/{state}", index=index, wait=wait)
        return found, data or []

    def node(self, node: str, *, index: int | None = None,
             wait: float | None = None) -> tuple[int, list[dict[str, Any]]]:
        found, data = self.consul.get_json(f"/v1/health/node/{node}", index=index, wait=wait)
        return found, data or []


class Agent:
    def __init__(self, consul: Consul) -> None:
        self.consul = consul

    def self(self) -> dict[str, Any]:
        return dict(self.consul.get_json("/v1/agent/self")[1])

    def node_name(self) -> str:
        return str(self.self()["Config"]["NodeName"])

    def services(self) -> dict[str, Any]:
        return dict(self.consul.get_json("/v1/agent/services")[1] or {})

    def checks(self) -> dict[str, Any]:
        return dict(self.consul.get_json("/v1/agent/checks")[1] or {})

    def service_register(self, name: str, *, service_id: str | None = None, port: int | None = None,
                         address: str | None = None, tags: list[str] | None = None,
                         meta: dict[str, str] | None = None, check: dict[str, Any] | None = None,
                         checks: list[dict[str, Any]] | None = None) -> None:
        payload: dict[str, Any] = {"Name": name}
        for key, value in (("ID", service_id), ("Port", port), ("Address", address), ("Tags", tags),
                           ("Meta", meta), ("Check", check), ("Checks", checks)):
            if value is not None:
                payload[key] = value
        self.consul.put_json("/v1/agent/service/register", payload)

    def service_deregister(self, service_id: str) -> None:
        self.consul.request("PUT", f"/v1/agent/service/deregister/{service_id}")

    def check_ttl(self, check_id: str, status: str, note: str = "") -> None:
        verb = {"passing": "pass", "warning": "warn", "critical": "fail"}[status]
        self.consul.request("PUT", f"/v1/agent/check/{verb}/{check_id}", [("note", note)] if note else [])


class Status:
    def __init__(self, consul: Consul) -> None:
        self.consul = consul

    def leader(self) -> str:
        return str(self.consul.get_json("/v1/status/leader")[1])

    def peers(self) -> list[str]:
        return list(self.consul.get_json("/v1/status/peers")[1] or [])
