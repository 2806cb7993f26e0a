"""consul's image: an agent that joins the servers listed in Consul KV."""

import json

from opsgit.testing import image_path, render_host_template


def test_the_agent_config_joins_the_servers_in_kv(host):
    template = host.file(image_path("/etc/opsgit/templates/consul.json.j2")).content_string
    config = json.loads(render_host_template(template, keys={
        "config/consul/servers/a": "10.1.0.1", "config/consul/servers/b": "10.1.0.2"}))
    assert config["retry_join"] == ["10.1.0.1", "10.1.0.2"] and config["datacenter"] == "dc1"


def test_the_agent_checks_its_own_http_api(host):
    service = json.loads(host.file(image_path("/etc/consul.d/consul.json")).content_string)["service"]
    assert service["checks"][0]["http"].endswith("/v1/status/leader")
