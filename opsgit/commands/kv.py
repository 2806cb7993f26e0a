"""`opsgit kv get|put|delete|export|import`, as `consul kv` does them, against any Consul."""

from __future__ import annotations

import base64
import binascii
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from opsgit.commands.base import Arg, Command
from opsgit.errors import UserError

if TYPE_CHECKING:
    from opsgit.consul.client import Consul, KVPair


def _client(consul: Consul | None) -> Consul:
    if consul is not None:
        return consul
    from opsgit.consul.client import Consul

    return Consul()


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
    consul = _client(consul)
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
    consul = _client(consul)
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
    consul = _client(consul)
    if not consul.kv.delete(key, recurse=recurse, cas=modify_index if cas else None):
        raise UserError(f"did not delete {key}: CAS failed")
    print(f"Success! Deleted keys with prefix: {key}" if recurse else f"Success! Deleted key: {key}")
    return 0


def kv_export(prefix: str = "", *, consul: Consul | None = None) -> int:
    consul = _client(consul)
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
    consul = _client(consul)
    for key, value, flags in pairs:
        if prefix and not key.startswith(prefix):
            continue
        consul.kv.put(key, value, flags=flags)
        print(f"Imported: {key}")
    return 0


COMMANDS = (Command("kv", "read and write Consul KV, as `consul kv` does", task=False, subcommands=(
    Command("get", "print a value (or a tree with --recurse)", lambda a: kv_get(
        a.key, recurse=a.recurse, keys=a.keys, separator=a.separator, detailed=a.detailed), args=(
        Arg("--recurse", "every key under the prefix, as key:value", kind="bool"),
        Arg("--keys", "list keys under the prefix", kind="bool"),
        Arg("--separator", "with --keys, roll keys up to this separator (default /)", metavar="SEP"),
        Arg("--detailed", "show indexes, flags and session too", kind="bool"),
        Arg("key", "the key or prefix", nargs="?", default=""))),
    Command("put", "write a value: VALUE, - for stdin, or @file", lambda a: kv_put(
        a.key, a.value, flags=a.flags, cas=a.cas, modify_index=a.modify_index, acquire=a.acquire,
        release=a.release, session=a.session), args=(
        Arg("--flags", "the key's flags, an unsigned 64-bit number", kind="int", metavar="N"),
        Arg("--cas", "write only if --modify-index still matches", kind="bool"),
        Arg("--modify-index", "the index --cas compares with", kind="int", metavar="N"),
        Arg("--acquire", "acquire the lock for --session", kind="bool"),
        Arg("--release", "release the lock of --session", kind="bool"),
        Arg("--session", "the session for --acquire and --release", metavar="ID"),
        Arg("key", "the key"),
        Arg("value", "the value (VALUE, - for stdin, @file)", nargs="?"))),
    Command("delete", "delete a key (or a prefix with --recurse)", lambda a: kv_delete(
        a.key, recurse=a.recurse, cas=a.cas, modify_index=a.modify_index), args=(
        Arg("--recurse", "every key under the prefix", kind="bool"),
        Arg("--cas", "delete only if --modify-index still matches", kind="bool"),
        Arg("--modify-index", "the index --cas compares with", kind="int", metavar="N"),
        Arg("key", "the key or prefix"))),
    Command("export", "print a prefix as JSON (base64 values)", lambda a: kv_export(a.prefix), args=(
        Arg("prefix", "the prefix to export (default: everything)", nargs="?", default=""),)),
    Command("import", "write the JSON of `export` (DATA, - or @file)", lambda a: kv_import(a.data, prefix=a.prefix),
            args=(Arg("--prefix", "only keys under this prefix", default="", metavar="PREFIX"),
                  Arg("data", "the JSON (DATA, - for stdin, @file)", nargs="?"))),
)),)
