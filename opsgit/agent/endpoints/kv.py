"""`/v1/kv` and `/v1/txn`."""

from __future__ import annotations

import re
from typing import Any

from opsgit.agent.core import ApiCore
from opsgit.agent.http import HttpRequest, HttpResponse
from opsgit.agent.shapes import (
    MAX_TXN_OPS,
    entry_json,
    json_body,
    json_response,
    uint,
    with_index,
)
from opsgit.agent.store import StoreError


class KvEndpoints(ApiCore):
    async def kv_get(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        self._consistency(request)
        key = match["key"]
        store = self.store
        if request.has("keys"):
            separator = request.arg("separator") or request.arg("seperator") or ""

            def compute_keys() -> tuple[int, Any]:
                found: list[str] = []
                for name in store.keys_under(key):
                    if separator:
                        cut = name.find(separator, len(key))
                        name = name[:cut + len(separator)] if cut >= 0 else name
                    if not found or found[-1] != name:
                        found.append(name)
                return store.prefix_index(key), found

            index, keys = await self.blocking(request, compute_keys, ("prefix", key))
            if not keys and key:
                return with_index(HttpResponse(404), index)
            return json_response(keys, index)
        if request.has("recurse"):
            def compute_tree() -> tuple[int, Any]:
                return store.prefix_index(key), [entry_json(store.kv[k]) for k in store.keys_under(key)]

            index, entries = await self.blocking(request, compute_tree, ("prefix", key))
            if not entries:
                return with_index(HttpResponse(404), index)
            return json_response(entries, index)
        if not key:
            raise StoreError(400, "Missing key name")

        def compute_one() -> tuple[int, Any]:
            return store.key_index(key), store.kv.get(key)

        index, entry = await self.blocking(request, compute_one, ("key", key))
        if entry is None:
            return with_index(HttpResponse(404), index)
        if request.has("raw"):
            # Consul's: a fixed type, no sniffing and a sandbox, so a stored page cannot run as one
            return with_index(HttpResponse(200, entry.value, [("X-Content-Type-Options", "nosniff"),
                                                               ("Content-Security-Policy", "sandbox")],
                                            content_type="text/plain"), index)
        return json_response([entry_json(entry)], index)

    async def kv_put(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        key = match["key"]
        if not key:
            raise StoreError(400, "Missing key name")
        chosen = [name for name in ("cas", "acquire", "release") if request.has(name)]
        if len(chosen) > 1:
            raise StoreError(400, "Conflicting flags: " + ", ".join(f"{name}=" for name in chosen))
        flags = uint(request.arg("flags"), "flags") if request.has("flags") else 0
        cas = uint(request.arg("cas"), "cas") if request.has("cas") else None
        ok, change = self.store.kv_set(key, request.body, flags, cas=cas, acquire=request.arg("acquire"),
                                       release=request.arg("release"))
        self.commit(change)
        return json_response(ok)

    async def kv_delete(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        recurse = request.has("recurse")
        cas = uint(request.arg("cas"), "cas") if request.has("cas") else None
        if recurse and cas is not None:
            raise StoreError(400, "Conflicting flags: cas=, recurse=")
        if not match["key"] and not recurse:
            raise StoreError(400, "Missing key name")
        ok, change = self.store.kv_delete(match["key"], recurse=recurse, cas=cas)
        self.commit(change)
        return json_response(ok)

    async def txn(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        operations = json_body(request)
        if not isinstance(operations, list):
            raise StoreError(400, "Failed to parse body: expected a list of operations")
        if len(operations) > MAX_TXN_OPS:
            raise StoreError(413, f"Transaction contains too many operations ({len(operations)} > {MAX_TXN_OPS})")
        from opsgit.agent.txn import run_transaction

        results, errors, change = run_transaction(self.store, operations)
        if errors:
            return json_response({"Results": None, "Errors": errors}, status=409)
        self.commit(change)
        return json_response({"Results": results, "Errors": None})
