"""Role bundles: host templates checked and copied byte for byte, with the Consul service definition."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_opsgit


def test_role_bundle_carries_templates_service_and_role_data(example: Path) -> None:
    assert run_opsgit("render", "--role", "binstore", cwd=example).returncode == 0
    bundle = example / "build/roles/binstore"
    assert (bundle / "templates/binstore.json.j2").read_bytes() == \
        (example / "roles/binstore/templates/binstore.json.j2").read_bytes()
    service = json.loads((bundle / "consul/binstore.json").read_text())["service"]
    assert service["name"] == "binstore" and service["port"] == 8080
    assert service["checks"][0]["http"] == "http://127.0.0.1:8080/health"
    role = json.loads((bundle / "role.json").read_text())
    assert role["templates"] == [{"source": "binstore.json.j2", "destination": "/etc/binstore/binstore.json",
                                  "command": "systemctl reload binstore", "perms": "0640"}]
    assert role["env_prefix"] == "service/binstore"


def test_host_templates_may_only_call_consul_functions(example: Path) -> None:
    template = example / "roles/web/templates/haproxy.cfg.j2"
    template.write_text(template.read_text().replace('service("binstore")', 'servce("binstore")'))
    result = run_opsgit("render", cwd=example)
    assert result.returncode == 1
    assert "roles/web/templates/haproxy.cfg.j2:17: unknown name 'servce' in a host template" in result.stderr
    assert "did you mean 'service'?" in result.stderr
