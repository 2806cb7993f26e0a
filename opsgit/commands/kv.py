"""`opsgit kv get|put|delete|export|import`, as `consul kv` does them, against any Consul."""

from __future__ import annotations

import base64
import binascii
import json
import sys
from pathlib import Path

from opsgit.consul.client import Consul, KVPair
from opsgit.errors import UserError


def _value_argument(raw: str | None) -> bytes:
    """VALUE, `-` for standard input, or `@file`."""
    if raw is None:
        return b""
    if raw == "-":
        return sys.stdin.buffer.read()
    if raw.startswith("@"):
        try:
            return Path(raw[1:]).read_bytes()
        except OSError as error:
            raise UserError(f"cannot read {raw[1:]}: {error.strerror}") from None
    return raw.encode("utf-8")


def kv_get(key: str, *, recurse: bool = False, keys: bool = False, separator: str | None = None,
           detailed: bool = False, consul: Consul | None = None) -> int:
    consul = consul or Consul()
    out = sys.stdout.buffer
    if keys:
        _, found = consul.kv.keys(key, separator=separator if separator is not None else "/")
        out.write("".join(f"{k}\n" for k in found).encode())
        return 0
    if recurse:
        _, pairs = consul.kv.tree(key)
        for pair in pairs:
            out.write(_detailed(pair) + b"\n" if detailed else pair.key.encode() + b":" + (pair.value or b"") + b"\n")
        return 0
    _, found_pair = consul.kv.get(key)
    if found_pair is None:
        raise UserError(f"no key exists at: {key}")
    out.write(_detailed(found_pair) if detailed else (found_pair.value or b"") + b"\n")
    out.flush()
    return 0


def _detailed(pair: KVPair) -> bytes:
    rows = [("CreateIndex", pair.create_index), ("Flags", pair.flags), ("Key", pair.key),
            ("LockIndex", pair.lock_index), ("ModifyIndex", pair.modify_index), ("Session", pair.session or "-")]
    text = "".join(f"{name:<16}{value}\n" for name, value in rows)
    return text.encode() + b"Value           " + (pair.value or b"") + b"\n"


def kv_put(key: str, value: str | None, *, flags: int | None = None, cas: bool = False,
           modify_index: int | None = None, acquire: bool = False, release: bool = False,
           session: str | None = None, consul: Consul | None = None) -> int:
    if cas and modify_index is None:
        raise UserError("--cas needs --modify-index", hint="0 writes only if the key does not exist")
    if (acquire or release) and not session:
        raise UserError("--acquire and --release need --session")
    consul = consul or Consul()
    body = _value_argument(value)
    written = consul.kv.put(key, body, flags=flags, cas=modify_index if cas else None,
                            acquire=session if acquire else None, release=session if release else None)
    if not written:
        reason = "CAS failed" if cas else "lock acquisition failed" if acquire else "lock release failed"
        raise UserError(f"did not write to {key}: {reason}")
    verb = "Lock acquired on" if acquire else "Lock released on" if release else "Data written to"
    print(f"Success! {verb}: {key}")
    return 0


def kv_delete(key: str, *, recurse: bool = False, cas: bool = False, modify_index: int | None = None,
              consul: Consul | None = None) -> int:
    if cas and modify_index is None:
        raise UserError("--cas needs --modify-index")
    consul = consul or Consul()
    if not consul.kv.delete(key, recurse=recurse, cas=modify_index if cas else None):
        raise UserError(f"did not delete {key}: CAS failed")
    print(f"Success! Deleted keys with prefix: {key}" if recurse else f"Success! Deleted key: {key}")
    return 0


def kv_export(prefix: str = "", *, consul: Consul | None = None) -> int:
    consul = consul or Consul()
    _, pairs = consul.kv.tree(prefix)
    entries = [{"key": p.key, "flags": p.flags, "value": base64.b64encode(p.value or b"").decode()} for p in pairs]
    print(json.dumps(entries, indent=2))
    return 0


def kv_import(data: str | None, *, prefix: str = "", consul: Consul | None = None) -> int:
    raw = _value_argument(data if data is not None else "-")
    try:
        entries = json.loads(raw)
        pairs = [(str(e["key"]), base64.b64decode(e.get("value") or "", validate=True), int(e.get("flags") or 0))
                 for e in entries]
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise UserError(f"cannot import: not the JSON `opsgit kv export` writes ({error})",
                        hint='expected [{"key": "...", "flags": 0, "value": "<base64>"}]') from None
    consul = consul or Consul()
    for key, value, flags in pairs:
        if prefix and not key.startswith(prefix):
            continue
        consul.kv.put(key, value, flags=flags)
        print(f"Imported: {key}")
    return 0
