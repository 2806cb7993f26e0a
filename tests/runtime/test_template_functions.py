"""consul-template's helper functions in host templates, rendered by `opsgit template --once`
against the dev agent (data written with py-consul), the output read back as TOML and text."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

import consul as py_consul

from tests.agent_process import AgentProcess
from tests.conftest import REPO_ROOT, run_opsgit

TEMPLATE = """\
{%- set servers = tree("config/redis") | explode -%}
{{ {"redis": servers, "checksum": {"sha": key("config/secret") | sha256_hex}} | to_toml }}
[groups]
{%- for group, pairs in tree("config/redis") | by_key | dictsort %}
{{ group }} = {{ pairs | map(attribute="key") | list | tojson }}
{%- endfor %}

# primary: {% for s in service("primary.redis") %}{{ s.address }} {% endfor %}
# any: {% for s in service("redis|any") %}{{ s.address }} {% endfor %}
# failing: {% for s in service("redis|critical") %}{{ s.address }} {% endfor %}
# by tag: {% for tag, found in service("redis|any") | by_tag | dictsort %}{{ tag }}={{ found | length }} {% endfor %}
# dcs: {{ datacenters() | join(",") }}
# host: {{ key("config/host") | regex_replace_all("^([a-z]+)-(\\\\d+)$", "$2.$1") }}
# stamp: {{ timestamp("2006-01-02") }} {{ timestamp() }}
# file: {{ file(file_path) | trim }}
"""


def test_the_helpers_render_as_consul_templates_do(agent: AgentProcess, tmp_path: Path) -> None:
    host, port = agent.address.split(":")
    consul = py_consul.Consul(host=host, port=int(port))
    consul.kv.put("config/redis/east/primary", "10.0.1.1:6379")
    consul.kv.put("config/redis/west/primary", "10.0.2.1:6379")
    consul.kv.put("config/redis/west/replica", "10.0.2.2:6379")
    consul.kv.put("config/secret", "s3cret")
    consul.kv.put("config/host", "web-42")
    for node, address, tag, status in (("r1", "10.0.1.1", "primary", "passing"),
                                       ("r2", "10.0.2.2", "replica", "critical")):
        consul.catalog.register(node, address, service={"Service": "redis", "ID": f"redis-{node}", "Port": 6379,
                                                        "Tags": [tag]},
                                check={"CheckID": f"service:redis-{node}", "Name": "tcp", "Status": status,
                                       "ServiceID": f"redis-{node}"})
    (tmp_path / "motd").write_text("hello from the host\n")
    source = tmp_path / "redis.toml.j2"
    source.write_text(TEMPLATE.replace("file_path", repr(str(tmp_path / "motd"))))
    result = run_opsgit("template", "--once", "--template", f"{source}:{tmp_path}/redis.toml", env=agent.env(),
                        cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "redis.toml").read_text()
    document = tomllib.loads(text)
    assert document["redis"] == {"east": {"primary": "10.0.1.1:6379"},
                                 "west": {"primary": "10.0.2.1:6379", "replica": "10.0.2.2:6379"}}
    assert document["checksum"]["sha"] == hashlib.sha256(b"s3cret").hexdigest()
    assert document["groups"] == {"east": ["primary"], "west": ["primary", "replica"]}
    assert "# primary: 10.0.1.1 \n" in text
    assert "# any: 10.0.1.1 10.0.2.2 \n" in text and "# failing: 10.0.2.2 \n" in text
    assert "# by tag: primary=1 replica=1 \n" in text
    assert "# dcs: dc1\n" in text and "# host: 42.web\n" in text
    assert re.search(r"# stamp: \d{4}-\d\d-\d\d \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n", text)
    assert "# file: hello from the host" in text


def test_safe_ls_holds_the_file_back_while_the_prefix_is_empty(agent: AgentProcess, tmp_path: Path) -> None:
    source = tmp_path / "upstreams.j2"
    source.write_text('{% for pair in safe_ls("upstreams") %}{{ pair.key }}={{ pair.value }}\n{% endfor %}')
    result = run_opsgit("template", "--once", "--missing-key-timeout", "1s", "--template",
                        f"{source}:{tmp_path}/upstreams", env=agent.env(), cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 1 and "upstreams/" in result.stderr
    assert not (tmp_path / "upstreams").exists()  # an empty prefix never empties the file
    agent.put("upstreams/web", "10.0.0.1")
    result = run_opsgit("template", "--once", "--template", f"{source}:{tmp_path}/upstreams", env=agent.env(),
                        cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "upstreams").read_text() == "web=10.0.0.1\n"


def test_a_malformed_service_query_is_a_clear_error(agent: AgentProcess, tmp_path: Path) -> None:
    source = tmp_path / "bad.j2"
    source.write_text('{{ service("redis|healthy") }}')
    result = run_opsgit("template", "--once", "--template", f"{source}:{tmp_path}/out", env=agent.env(),
                        cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 1 and "service('redis|healthy')" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_a_file_the_template_reads_is_watched(agent: AgentProcess, tmp_path: Path) -> None:
    """As consul-template's `file`: a change to the file alone renders the template again."""
    from tests.agent_process import wait_for
    from tests.conftest import start_opsgit

    motd = tmp_path / "motd"
    motd.write_text("first\n")
    source = tmp_path / "motd.j2"
    source.write_text(f"motd: {{{{ file({str(motd)!r}) | trim }}}}\n")
    out = tmp_path / "motd.out"
    runner = start_opsgit("template", "--template", f"{source}:{out}", env=agent.env(), cwd=REPO_ROOT)
    try:
        wait_for(lambda: out.exists() and out.read_text() == "motd: first\n", timeout=30)
        motd.write_text("second\n")
        wait_for(lambda: out.read_text() == "motd: second\n", timeout=30)
    finally:
        runner.terminate()
        runner.communicate(timeout=30)
