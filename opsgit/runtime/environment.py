"""The environment `opsgit exec` gives its child, computed as a plain value from Consul data.

Key → variable name, in this order (envconsul's, documented in the README):

1. A prefix matches on a path boundary: `--prefix app` reads `app/…`, never `app2/…`.
2. The name is the key below the prefix (`service/binstore/db/host` under `service/binstore`
   is `db/host`); folder keys (ending in `/`) and the prefix key itself are skipped.
3. `--with-prefix` puts the prefix in front, its `/` and other odd characters as `_`
   (`service_binstore_db/host`).
4. `--sanitize` turns every character outside `[A-Za-z0-9_]` into `_` (`db_host`).
5. `--upcase` upper-cases the name (`DB_HOST`).

Sources are applied in order and the later one wins: the parent's environment (unless
`--pristine`), then each `--prefix` as given, then each `--service`. `--allow`/`--deny` globs
filter the final names (deny wins), as consul-template's exec allowlist/denylist do.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from opsgit.runtime.consul_data import KeyPair, ServiceInstance

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True)
class NamingOptions:
    sanitize: bool = False
    upcase: bool = False
    with_prefix: bool = False


@dataclass(frozen=True)
class EnvironmentOptions:
    naming: NamingOptions = NamingOptions()
    pristine: bool = False
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()


def normalise_prefix(prefix: str) -> str:
    return prefix.strip("/")


def variable_name(prefix: str, key: str, naming: NamingOptions) -> str:
    name = f"{_UNSAFE.sub('_', normalise_prefix(prefix))}_{key}" if naming.with_prefix else key
    if naming.sanitize:
        name = _UNSAFE.sub("_", name)
    return name.upper() if naming.upcase else name


def prefix_variables(prefix: str, pairs: Iterable[KeyPair], naming: NamingOptions) -> dict[str, str]:
    """Variables from one prefix's keys (each pair's `key` is relative to the prefix)."""
    variables: dict[str, str] = {}
    for pair in sorted(pairs, key=lambda p: p.path):
        if not pair.key or pair.key.endswith("/"):
            continue
        variables[variable_name(prefix, pair.key, naming)] = pair.value
    return variables


def service_variables(name: str, instances: Sequence[ServiceInstance], naming: NamingOptions) -> dict[str, str]:
    """`<name>_address`, `_port`, `_id`, `_node`, `_tags` of the first healthy instance (by node,
    then id) and `<name>_instances` as `address:port,…` of all of them."""
    if not instances:
        return {}
    first = instances[0]
    fields = {
        "address": first.address,
        "port": str(first.port),
        "id": first.id,
        "node": first.node,
        "tags": ",".join(first.tags),
        "instances": ",".join(f"{i.address}:{i.port}" for i in instances),
    }
    plain = NamingOptions(sanitize=naming.sanitize, upcase=naming.upcase)
    return {variable_name("", f"{name}_{field}", plain): value for field, value in fields.items()}


@dataclass(frozen=True)
class Rejected:
    name: str
    reason: str


def compute_environment(parent: Mapping[str, str], sources: Sequence[Mapping[str, str]],
                        options: EnvironmentOptions) -> tuple[dict[str, str], list[Rejected]]:
    """The child's environment, and the variables that cannot be one (with why)."""
    environment: dict[str, str] = {} if options.pristine else dict(parent)
    for variables in sources:
        environment.update(variables)
    rejected: list[Rejected] = []
    result: dict[str, str] = {}
    for name, value in environment.items():
        if options.allow and not any(fnmatch.fnmatchcase(name, glob) for glob in options.allow):
            continue
        if any(fnmatch.fnmatchcase(name, glob) for glob in options.deny):
            continue
        if not name or "=" in name or "\0" in name:
            rejected.append(Rejected(name, "not a valid variable name (use --sanitize)"))
            continue
        if "\0" in value:
            rejected.append(Rejected(name, "its value contains a NUL byte"))
            continue
        result[name] = value
    return result, rejected
