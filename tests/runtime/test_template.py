"""`opsgit template` against the dev agent, as real processes."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import requests

from tests.agent_process import AgentProcess, wait_for
from tests.conftest import REPO_ROOT, run_opsgit, start_opsgit


def start_template(agent: AgentProcess, *args: str) -> subprocess.Popen[str]:
    return start_opsgit("template", *args, env=agent.env(), cwd=REPO_ROOT)


def template(agent: AgentProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return run_opsgit("template", *args, env=agent.env(), cwd=REPO_ROOT, timeout=60)


def test_example_role_configs_render_from_kv_and_catalog(agent: AgentProcess, tmp_path: Path) -> None:
    agent.put("service/binstore/postgres_addr", "10.0.0.5:5432")
    agent.put("service/binstore/redis_addr", "10.0.0.9:6379")
    agent.put("config/consul/servers/a", "10.1.0.1")
    agent.put("config/consul/servers/b", "10.1.0.2")
    for node, address in (("bin-1", "10.2.0.1"), ("bin-2", "10.2.0.2")):
        requests.put(f"{agent.url}/v1/catalog/register", json={
            "Node": node, "Address": address, "Service": {"Service": "binstore", "Port": 8080},
            "Check": {"Name": "alive", "Status": "passing", "ServiceID": "binstore"}})
    result = template(agent, "--once",
                      "--template", f"roles/binstore/templates/binstore.json.j2:{tmp_path}/binstore.json",
                      "--template", f"roles/web/templates/haproxy.cfg.j2:{tmp_path}/haproxy.cfg",
                      "--template", f"roles/consul/templates/consul.json.j2:{tmp_path}/agent.json")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "binstore.json").read_text())["redis_addr"] == "10.0.0.9:6379"
    haproxy = (tmp_path / "haproxy.cfg").read_text()
    assert "server bin-1 10.2.0.1:8080 check" in haproxy and "server bin-2 10.2.0.2:8080 check" in haproxy
    assert json.loads((tmp_path / "agent.json").read_text())["retry_join"] == ["10.1.0.1", "10.1.0.2"]


def test_a_missing_key_fails_naming_it(agent: AgentProcess, tmp_path: Path) -> None:
    result = template(agent, "--once", "--missing-key-timeout", "1s",
                      "--template", f"roles/binstore/templates/binstore.json.j2:{tmp_path}/out.json")
    assert result.returncode == 1
    assert "key 'service/binstore/postgres_addr' does not exist in Consul" in result.stderr
    assert not (tmp_path / "out.json").exists()


def test_a_kv_write_rerenders_and_runs_the_command_once(agent: AgentProcess, tmp_path: Path) -> None:
    agent.put("service/binstore/postgres_addr", "10.0.0.5:5432")
    out, log = tmp_path / "binstore.json", tmp_path / "reloads"
    process = start_template(agent, "--template",
                             f"roles/binstore/templates/binstore.json.j2:{out}:sh -c 'echo reload >> {log}'")
    try:
        # the shell creates the file before it writes the line: wait for the line
        wait_for(lambda: out.exists() and log.exists() and log.read_text().count("reload") == 1)
        agent.put("service/binstore/redis_addr", "10.9.9.9:6379")
        wait_for(lambda: "10.9.9.9:6379" in out.read_text())
        wait_for(lambda: log.read_text().count("reload") == 2)
        before = out.stat().st_mtime_ns
        agent.put("service/binstore/redis_addr", "10.9.9.9:6379")  # the same value: nothing to write
        time.sleep(1.0)
        assert out.stat().st_mtime_ns == before and log.read_text().count("reload") == 2
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
    assert process.returncode == 0


def test_malformed_specs_and_template_errors(agent: AgentProcess, tmp_path: Path) -> None:
    bad = template(agent, "--once", "--template", "only-a-source.j2")
    assert bad.returncode == 1 and "malformed --template" in bad.stderr
    broken = tmp_path / "broken.j2"
    broken.write_text("line one\n{{ key('x' }}\n")
    failed = template(agent, "--once", "--template", f"{broken}:{tmp_path}/out")
    assert failed.returncode == 1 and f"{broken}:2: template syntax error" in failed.stderr
    assert not (tmp_path / "out").exists()
    unknown = tmp_path / "unknown.j2"
    unknown.write_text("a\n{{ secret('x') }}\n")
    failed = template(agent, "--once", "--template", f"{unknown}:{tmp_path}/out")
    assert failed.returncode == 1 and f"{unknown}:2: undefined name 'secret'" in failed.stderr
    assert not (tmp_path / "out").exists()
    latin1 = tmp_path / "latin1.j2"
    latin1.write_bytes(b"a\ncaf\xe9 {{ key('x') }}\n")  # a file saved in another encoding on the host
    failed = template(agent, "--once", "--template", f"{latin1}:{tmp_path}/out")
    assert failed.returncode == 1 and f"{latin1}:2: not UTF-8 text" in failed.stderr, failed.stderr
    assert not (tmp_path / "out").exists() and len(failed.stderr.splitlines()) == 1
    plain = tmp_path / "plain.j2"
    plain.write_text("a\n")
    failed = template(agent, "--once", "--template", f"{plain}:{tmp_path}")
    assert failed.returncode == 1 and f"cannot write {tmp_path}: it is a directory" in failed.stderr
    assert len(failed.stderr.splitlines()) == 1


def test_consul_outage_keeps_the_file_and_updates_resume(tmp_path: Path) -> None:
    from tests.agent_process import data_dir_agent, free_port

    port = free_port()
    agent = data_dir_agent(tmp_path / "data", port=port)
    agent.put("service/binstore/postgres_addr", "10.0.0.5:5432")
    out = tmp_path / "binstore.json"
    process = start_template(agent, "--template", f"roles/binstore/templates/binstore.json.j2:{out}")
    try:
        wait_for(lambda: out.exists())
        kept = out.read_text()
        agent.stop(signal.SIGKILL)
        time.sleep(2)
        assert out.read_text() == kept and process.poll() is None  # still running, file untouched
        agent = data_dir_agent(tmp_path / "data", port=port)
        agent.put("service/binstore/postgres_addr", "10.0.0.6:5432")
        wait_for(lambda: "10.0.0.6:5432" in out.read_text(), timeout=40)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
        agent.stop()
    assert "Consul unreachable" in err and "keeping the last files" in err


def test_a_config_file_gives_backup_perms_delimiters_and_in_place(agent: AgentProcess, tmp_path: Path) -> None:
    agent.put("service/binstore/postgres_addr", "10.0.0.5:5432")
    (tmp_path / "nginx.conf.j2").write_text("upstream [[ key('service/binstore/postgres_addr') ]];\n"
                                            "set $x {{ literal }};\n")
    (tmp_path / "mounted.j2").write_text("addr={{ key('service/binstore/postgres_addr') }}\n")
    mounted = tmp_path / "mounted"
    mounted.write_text("old\n")
    inode = mounted.stat().st_ino
    config = tmp_path / "templates.yaml"
    config.write_text(f"""# the binstore host's files
- source: nginx.conf.j2
  destination: out/nginx.conf
  perms: "0600"
  backup: true
  left_delimiter: "[["
  right_delimiter: "]]"
  command: [sh, -c, "echo reload >> {tmp_path}/commands.log"]
  command_timeout: 10s
- source: mounted.j2
  destination: mounted
  in_place: true
  command: [sh, -c, "echo reload >> {tmp_path}/commands.log"]
""")
    out = tmp_path / "out" / "nginx.conf"
    process = start_template(agent, "--config", str(config))
    try:
        wait_for(lambda: out.exists() and mounted.read_text() == "addr=10.0.0.5:5432\n")
        assert out.read_text() == "upstream 10.0.0.5:5432;\nset $x {{ literal }};\n"
        assert out.stat().st_mode & 0o777 == 0o600
        agent.put("service/binstore/postgres_addr", "10.0.0.6:5432")
        wait_for(lambda: "10.0.0.6" in out.read_text() and "10.0.0.6" in mounted.read_text())
        assert (tmp_path / "out" / "nginx.conf.bak").read_text() == "upstream 10.0.0.5:5432;\nset $x {{ literal }};\n"
        assert mounted.stat().st_ino == inode  # rewritten in place, not renamed over
        time.sleep(0.5)
        assert (tmp_path / "commands.log").read_text().count("reload") == 2  # once per round, not per template
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)


def test_a_bad_config_file_names_its_line(agent: AgentProcess, tmp_path: Path) -> None:
    (tmp_path / "a.j2").write_text("x\n")
    config = tmp_path / "templates.yaml"
    for body, message in [("- source: a.j2\n  destination: out\n  perm: '0600'\n", ":3: unknown key 'perm'"),
                          ("- source: a.j2\n  destination: out\n  perms: 0600\n", ":3: perms 600 must be an octal"),
                          ("- source: b.j2\n  destination: out\n", ":1: template"),
                          ("- source: a.j2\n  destination: out\n  wait: soon\n", ":3: invalid wait 'soon'"),
                          ("source: a.j2\n", "must be a list")]:
        config.write_text(body)
        result = template(agent, "--once", "--config", str(config))
        assert result.returncode == 1 and message in result.stderr, (body, result.stderr)
        assert str(config) in result.stderr and not (tmp_path / "out").exists()


def test_give_up_after_a_long_outage_exits_1_keeping_the_file(tmp_path: Path) -> None:
    from tests.agent_process import data_dir_agent

    agent = data_dir_agent(tmp_path / "data")
    agent.put("service/binstore/postgres_addr", "10.0.0.5:5432")
    out = tmp_path / "binstore.json"
    process = start_template(agent, "--give-up-after", "2s", "--template",
                             f"roles/binstore/templates/binstore.json.j2:{out}")
    try:
        wait_for(lambda: out.exists())
        kept = out.read_text()
        agent.stop(signal.SIGKILL)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1 and "Consul unreachable for 2s" in err and "giving up" in err
    assert out.read_text() == kept


def test_a_templates_own_wait_delays_only_that_template(agent: AgentProcess, tmp_path: Path) -> None:
    agent.put("service/binstore/postgres_addr", "10.0.0.5:5432")
    for name in ("quick", "patient"):
        (tmp_path / f"{name}.j2").write_text("addr={{ key('service/binstore/postgres_addr') }}\n")
    config = tmp_path / "templates.yaml"
    config.write_text("- {source: quick.j2, destination: quick}\n"
                      "- {source: patient.j2, destination: patient, wait: 2s}\n")
    process = start_template(agent, "--config", str(config))
    try:
        wait_for(lambda: (tmp_path / "patient").exists() and (tmp_path / "quick").exists())
        agent.put("service/binstore/postgres_addr", "10.0.0.6:5432")
        wait_for(lambda: "10.0.0.6" in (tmp_path / "quick").read_text())
        assert "10.0.0.5" in (tmp_path / "patient").read_text()  # still quiescing
        wait_for(lambda: "10.0.0.6" in (tmp_path / "patient").read_text())
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
