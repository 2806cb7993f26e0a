"""web's image: HAProxy in front of every healthy binstore instance."""

import json

from opsgit.testing import image_path, render_host_template


def test_the_consul_service_definition_is_valid(host):
    service = json.loads(host.file(image_path("/etc/consul.d/web.json")).content_string)["service"]
    assert service["name"] == "web" and service["port"] == 80 and "public" in service["tags"]


def test_haproxy_config_lists_every_healthy_binstore(host):
    template = host.file(image_path("/etc/opsgit/templates/haproxy.cfg.j2")).content_string
    config = render_host_template(template, services={"binstore": [
        {"node": "binstore-1", "address": "10.0.1.1", "port": 8080},
        {"node": "binstore-2", "address": "10.0.1.2", "port": 8080}]})
    assert "server binstore-1 10.0.1.1:8080 check" in config and "server binstore-2 10.0.1.2:8080 check" in config
    assert "no healthy binstore" in render_host_template(template)


def test_haproxy_runs_under_opsgit_exec(host):
    unit = host.file(image_path("/etc/systemd/system/web.service")).content_string
    assert "opsgit exec --prefix service/web -- /usr/sbin/haproxy" in unit
