"""Helpers for a role's testinfra tests (`roles/<role>/tests/`, run by `opsgit verify`).

    from opsgit.testing import image_path, render_host_template

    def test_config_renders(host):
        text = host.file(image_path("/etc/opsgit/templates/binstore.json.j2")).content_string
        rendered = render_host_template(text, keys={"service/binstore/postgres_addr": "10.0.0.5:5432"})
        assert json.loads(rendered)["postgres_addr"] == "10.0.0.5:5432"

`image_path` puts a path under the image root `opsgit verify` tests (`OPSGIT_IMAGE_ROOT`: the
local build's directory for `local://`, `/` on a real host). `render_host_template` renders a
host template as `opsgit template` would, from the given KV data and services instead of Consul.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opsgit.render.jinja import compile_template, make_environment, render
from opsgit.runtime.consul_data import Dependency, Functions, KeyPair, MissingKey, ServiceInstance, file_contents

IMAGE_ROOT_VARIABLE = "OPSGIT_IMAGE_ROOT"


def image_root() -> str:
    return os.environ.get(IMAGE_ROOT_VARIABLE, "/")


def image_path(path: str) -> str:
    return os.path.join(image_root(), path.lstrip("/"))


def render_host_template(source: str, *, keys: Mapping[str, str] | None = None,
                         services: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                         file: str = "<template>") -> str:
    """Render with `key()`/`tree()`/`service()` answered from `keys` and `services` (each
    instance a mapping with node, address, port and optionally id, tags, meta)."""
    keys = dict(keys or {})
    services = dict(services or {})

    def load(dependency: Dependency) -> Any:
        kind = dependency[0]
        if kind == "key":
            return (keys[dependency[1]], 0, 1) if dependency[1] in keys else None
        if kind == "tree":
            prefix = dependency[1] + "/" if dependency[1] else ""
            return tuple(KeyPair(k[len(prefix):], k, v) for k, v in sorted(keys.items()) if k.startswith(prefix))
        if kind == "service":
            return tuple(ServiceInstance(node=str(s["node"]), address=str(s["address"]), port=int(s["port"]),
                                         id=str(s.get("id", f"{dependency[1]}-{s['node']}")), name=dependency[1],
                                         tags=tuple(s.get("tags", ())), meta=dict(s.get("meta", {})))
                         for s in services.get(dependency[1], ()))
        if kind == "services":
            return tuple(sorted((name, ()) for name in services))
        if kind == "nodes":
            return tuple(sorted({(str(s["node"]), str(s["address"])) for group in services.values() for s in group}))
        if kind == "file":
            return file_contents(dependency[1])
        return None

    functions = Functions({}, load)
    template = compile_template(make_environment(Path.cwd(), host=True), source, file)
    try:
        return render(template, file, functions.globals())
    except MissingKey as absent:
        raise KeyError(f"the template reads key {absent.path!r}; give it in keys=") from None
