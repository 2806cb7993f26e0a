"""`PUT /v1/txn`: KV operations applied all together at one index, or not at all."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from opsgit.agent.shapes import entry_json, json_kind
from opsgit.agent.store import Change, Entry, Store, StoreError

READS = ("get", "get-tree", "get-or-empty", "check-index", "check-session", "check-not-exists")


def run_transaction(store: Store, operations: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                                                   Change | None]:
    """(results, errors, change). With errors nothing was changed. A body that does not decode
    (a field of the wrong type) is refused whole with 400, as Consul's decoder does."""
    for operation in operations:
        kv = operation.get("KV") if isinstance(operation, dict) else None
        if isinstance(kv, dict):
            _uint64(kv, "Flags")
            _uint64(kv, "Index")
    snapshot = _snapshot(store, operations)
    writes = any(_verb(op) not in READS for op in operations if isinstance(op, dict))
    change = Change(store.index + 1) if writes else None
    if change is not None:
        store.index = change.index
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for number, operation in enumerate(operations):
        try:
            results.extend(_apply(store, operation, change))
        except StoreError as error:
            errors.append({"OpIndex": number, "What": str(error)})
    if errors:
        _restore(store, snapshot)
        return [], errors, None
    return results, [], change


def _verb(operation: dict[str, Any]) -> str:
    kv = operation.get("KV") or {}
    return str(kv.get("Verb", "")).lower()


def _snapshot(store: Store, operations: list[Any]) -> dict[str, Any]:
    keys: set[str] = set()
    for operation in operations:
        kv = (operation or {}).get("KV") if isinstance(operation, dict) else None
        if isinstance(kv, dict) and isinstance(kv.get("Key"), str):
            keys.add(kv["Key"])
            if str(kv.get("Verb", "")).lower() == "delete-tree":
                keys.update(store.keys_under(kv["Key"]))
    return {"index": store.index, "kv_index": store.kv_index,
            "entries": {key: store.kv[key].copy() if key in store.kv else None for key in keys},
            "tombstones": {key: store.tombstones.get(key) for key in keys}}


def _restore(store: Store, snapshot: dict[str, Any]) -> None:
    import bisect

    for key, entry in snapshot["entries"].items():
        present = key in store.kv
        if entry is None and present:
            del store.kv[key]
            del store._keys[bisect.bisect_left(store._keys, key)]
        elif entry is not None:
            if not present:
                bisect.insort(store._keys, key)
            store.kv[key] = entry
        stone = snapshot["tombstones"][key]
        if stone is None:
            store._forget_tombstone(key)
        else:
            if key not in store.tombstones:
                bisect.insort(store._tombstone_keys, key)
            store.tombstones[key] = stone
    store.index, store.kv_index = snapshot["index"], snapshot["kv_index"]


def _entry_result(entry: Entry | None, *, with_value: bool) -> list[dict[str, Any]]:


    return [{"KV": entry_json(entry, with_value=with_value)}] if entry is not None else []


def _uint64(kv: dict[str, Any], name: str) -> int:
    """A uint64 field of a KV operation, as Consul's decoder reads it (a whole number, in range)."""
    value = kv.get(name) or 0
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or \
            not 0 <= value < 2**64:
        raise StoreError(400, f"Failed to parse body: json: cannot unmarshal {json_kind(value)} into Go struct "
                              f"field KVTxnOp.KV.{name} of type uint64")
    return int(value)


def _apply(store: Store, operation: Any, change: Change | None) -> list[dict[str, Any]]:
    if not isinstance(operation, dict) or not isinstance(operation.get("KV"), dict):
        raise StoreError(400, "only KV operations are supported by the dev agent")
    kv = operation["KV"]
    verb = str(kv.get("Verb", "")).lower()
    key = kv.get("Key", "")
    if not isinstance(key, str):
        raise StoreError(400, "Key must be a string")
    try:
        value = base64.b64decode(kv["Value"]) if kv.get("Value") else b""
    except (binascii.Error, TypeError):
        raise StoreError(400, f"invalid base64 Value for key {key!r}") from None
    flags = _uint64(kv, "Flags")
    index = _uint64(kv, "Index")
    session = kv.get("Session") or None
    if session is not None and not isinstance(session, str):
        raise StoreError(400, "Failed to parse body: json: cannot unmarshal into Go struct field KVTxnOp.KV.Session "
                              "of type string")
    entry = store.kv.get(key)
    if verb == "get":
        if entry is None:
            raise StoreError(404, f'key "{key}" doesn\'t exist')
        return _entry_result(entry, with_value=True)
    if verb == "get-or-empty":
        return _entry_result(entry, with_value=True)
    if verb == "get-tree":
        return [{"KV": _entry_result(store.kv[k], with_value=True)[0]["KV"]} for k in store.keys_under(key)]
    if verb == "check-index":
        if entry is None or entry.modify_index != index:
            raise StoreError(409, f"current modify index {entry.modify_index if entry else 0} != {index}")
        return _entry_result(entry, with_value=False)
    if verb == "check-session":
        if entry is None or entry.session != session:
            raise StoreError(409, f'key "{key}" is not locked by session "{session}"')
        return _entry_result(entry, with_value=False)
    if verb == "check-not-exists":
        if entry is not None:
            raise StoreError(409, f'key "{key}" exists')
        return []
    assert change is not None
    if verb == "set":
        store.kv_set(key, value, flags, change=change)
    elif verb == "cas":
        ok, _ = store.kv_set(key, value, flags, cas=index, change=change)
        if not ok:
            raise StoreError(409, f'failed to set key "{key}", index is stale')
    elif verb == "lock":
        ok, _ = store.kv_set(key, value, flags, acquire=str(session), change=change)
        if not ok:
            raise StoreError(409, f'failed to lock key "{key}", lock is already held')
    elif verb == "unlock":
        ok, _ = store.kv_set(key, value, flags, release=str(session), change=change)
        if not ok:
            raise StoreError(409, f'failed to unlock key "{key}", lock isn\'t held, or is held by another session')
    elif verb == "delete":
        store.kv_delete(key, change=change)
        return []
    elif verb == "delete-tree":
        store.kv_delete(key, recurse=True, change=change)
        return []
    elif verb == "delete-cas":
        ok, _ = store.kv_delete(key, cas=index, change=change)
        if not ok:
            raise StoreError(409, f'failed to delete key "{key}", index is stale')
        return []
    else:
        raise StoreError(400, f"unknown KV verb {verb!r}")
    return _entry_result(store.kv.get(key), with_value=False)
