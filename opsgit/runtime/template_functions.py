"""consul-template's helper functions for host templates, as Jinja filters and functions.

Named as consul-template names them, in snake case: `timestamp`, `by_key`, `by_tag`,
`regex_replace_all`, `sha256_hex`, `to_toml`, `explode`. The ones that read what can change
(`safe_ls`, `safe_tree`, `datacenters`, `service("tag.name@dc|any")`, and `file`, watched as
consul-template watches it) are dependencies in `consul_data.py`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterable
from typing import Any

from opsgit.errors import RenderError
from opsgit.runtime.consul_data import KeyPair, ServiceInstance

# Go's reference-time layout tokens (time.Format), longest first, as strftime directives
GO_LAYOUT = [("2006", "%Y"), ("January", "%B"), ("Monday", "%A"), ("Jan", "%b"), ("Mon", "%a"), ("MST", "%Z"),
             ("-07:00", "%:z"), ("-0700", "%z"), ("Z07:00", "Z07:00"), ("01", "%m"), ("02", "%d"), ("15", "%H"),
             ("03", "%I"), ("04", "%M"), ("05", "%S"), ("06", "%y"), ("PM", "%p"), ("_2", "%e"), (".000", ".%f")]
GO_TOKENS = re.compile("|".join(re.escape(token) for token, _ in GO_LAYOUT))


def timestamp(layout: str = "", *, now: dt.datetime | None = None) -> str:
    """The time of rendering, UTC: RFC 3339 by default, else in a Go layout (`2006-01-02`) as
    consul-template takes it; `unix` gives seconds since the epoch."""
    moment = now or dt.datetime.now(dt.UTC)
    if not layout:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if layout == "unix":
        return str(int(moment.timestamp()))
    directives = dict(GO_LAYOUT)

    def one(match: re.Match[str]) -> str:
        token = match.group()
        if token == "Z07:00":
            return "Z"
        if token == ".000":
            return "." + moment.strftime("%f")[:3]
        if token == "_2":
            return f"{moment.day:2d}"
        if token == "-07:00":
            return "+00:00"
        return moment.strftime(directives[token])

    return GO_TOKENS.sub(one, layout)


def by_key(pairs: Iterable[KeyPair]) -> dict[str, list[KeyPair]]:
    """A tree's pairs grouped by their first path segment, each pair's key made relative to it
    (consul-template's byKey): `{% for group, pairs in tree("svc") | by_key | dictsort %}`."""
    groups: dict[str, list[KeyPair]] = {}
    for pair in pairs:
        top, separator, rest = pair.key.partition("/")
        if not separator:
            continue  # a key directly under the prefix belongs to no group
        groups.setdefault(top, []).append(KeyPair(rest, pair.path, pair.value, pair.flags, pair.create_index,
                                                  pair.modify_index, pair.lock_index, pair.session))
    return groups


def by_tag(instances: Iterable[ServiceInstance | dict[str, Any]]) -> dict[str, list[Any]]:
    """Service instances (or catalog services) grouped by each of their tags (consul-template's byTag)."""
    groups: dict[str, list[Any]] = {}
    for instance in instances:
        tags = instance.get("tags", []) if isinstance(instance, dict) else instance.tags
        for tag in tags:
            groups.setdefault(tag, []).append(instance)
    return groups


def explode(pairs: Iterable[KeyPair]) -> dict[str, Any]:
    """A tree's pairs as nested mappings, one level per path segment (consul-template's explode)."""
    root: dict[str, Any] = {}
    for pair in pairs:
        *parents, leaf = pair.key.split("/")
        node = root
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise RenderError(f"explode: {pair.path!r} is both a value and a folder")
            node = child
        node[leaf] = pair.value
    return root


def regex_replace_all(text: str, pattern: str, replacement: str) -> str:
    """Every match of `pattern` replaced; `$1`/`${name}` refer to groups as in Go."""
    python = re.sub(r"\$\{(\w+)\}|\$(\d+)", lambda m: rf"\g<{m.group(1) or m.group(2)}>",
                    replacement.replace("\\", "\\\\"))
    try:
        return re.sub(pattern, python, str(text))
    except re.error as error:
        raise RenderError(f"regex_replace_all: invalid pattern {pattern!r}: {error}") from None


def regex_match(text: str, pattern: str) -> bool:
    try:
        return re.search(pattern, str(text)) is not None
    except re.error as error:
        raise RenderError(f"regex_match: invalid pattern {pattern!r}: {error}") from None


def sha256_hex(text: str) -> str:
    return hashlib.sha256(str(text).encode("utf-8")).hexdigest()


def to_toml(value: Any) -> str:
    import tomli_w

    if not isinstance(value, dict):
        raise RenderError("to_toml: only a mapping can be TOML (a document is a table)")
    try:
        return tomli_w.dumps(value)
    except TypeError as error:
        raise RenderError(f"to_toml: {error}") from None


HOST_FILTERS: dict[str, Callable[..., Any]] = {
    "by_key": by_key, "by_tag": by_tag, "explode": explode, "regex_replace_all": regex_replace_all,
    "regex_match": regex_match, "sha256_hex": sha256_hex, "to_toml": to_toml,
}
HOST_GLOBALS: dict[str, Callable[..., Any]] = {"timestamp": timestamp}
