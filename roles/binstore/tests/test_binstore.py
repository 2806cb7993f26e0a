"""binstore's image: run with `HC_ROLE=binstore invoke verify --hosts local://` after a dev build,
or against a machine built from the image with `--hosts ssh://admin@host`."""

import json

from opsgit.testing import image_path, render_host_template


def test_the_consul_service_definition_is_valid(host):
    definition = host.file(image_path("/etc/consul.d/binstore.json"))
    assert definition.exists
    service = json.loads(definition.content_string)["service"]
    assert service["name"] == "binstore" and service["port"] == 8080
    assert [check["http"] for check in service["checks"]] == ["http://127.0.0.1:8080/health"]


def test_the_config_template_is_installed_and_renders(host):
    template = host.file(image_path("/etc/opsgit/templates/binstore.json.j2"))
    assert template.exists
    config = json.loads(render_host_template(template.content_string, keys={
        "service/binstore/postgres_addr": "10.0.3.1:5432", "service/binstore/live_colour": "green"}))
    assert config["postgres_addr"] == "10.0.3.1:5432" and config["live_colour"] == "green"
    assert config["redis_addr"] == "127.0.0.1:6379"  # the default while Consul has none


def test_opsgit_template_knows_where_the_config_goes(host):
    templates = json.loads(host.file(image_path("/etc/opsgit/templates.yaml")).content_string)  # JSON is YAML
    assert templates == [{"source": "templates/binstore.json.j2", "destination": "/etc/binstore/binstore.json",
                          "command": "systemctl reload binstore", "perms": "0640"}]


def test_the_service_runs_under_opsgit_exec_with_its_kv_prefix(host):
    unit = host.file(image_path("/etc/systemd/system/binstore.service")).content_string
    assert "ExecStart=/usr/local/bin/opsgit exec --prefix service/binstore -- /usr/local/bin/binstore" in unit
    assert "KillMode=mixed" in unit
    assert host.file(image_path("/etc/systemd/system/opsgit-template.service")).contains(
        "opsgit template --config /etc/opsgit/templates.yaml")
    assert host.file(image_path("/etc/opsgit/role")).content_string.strip() == "HC_ROLE=binstore"
