"""The dashboard over HTTP, as a team would use it: environments with their latest run and lock,
a run's plan and apply log, a live apply streamed as it goes, the Unlock button's rules (signed
in, CSRF, recorded in the history), Consul's health from a real agent, and the security rules."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import consul as py_consul
import httpx
import pytest

from tests.agent_process import AgentProcess
from tests.conftest import OPSGIT, opsgit_environment, run_opsgit
from tests.server.conftest import TOKEN, free_port, monorepo, sign_in, start_server


def test_environments_runs_and_a_runs_page(tmp_path: Path, agent: AgentProcess) -> None:
    root = monorepo(tmp_path / "ops")
    assert run_opsgit("plan", "--env", "t", cwd=root).returncode == 0
    assert run_opsgit("apply", "--env", "t", "--auto-approve", cwd=root).returncode == 0
    server = start_server(root, agent)
    try:
        with server.client() as client:
            overview = client.get("/").text
            assert "the test environment" in overview and "#2" in overview and "APPLIED" in overview
            assert "Apply complete! Resources: 3 added, 0 changed, 0 destroyed." in overview
            page = client.get("/environments/t").text
            assert page.index("#2") < page.index("#1")  # newest first
            assert "from the CLI" in page and "PLANNED" in page
            run = client.get("/environments/t/runs/2")
            assert run.status_code == 200
            assert '<span class="create">  + resource &#34;null_resource&#34; &#34;node&#34; {</span>' in run.text
            assert "module.app.time_sleep.settle: Creation complete after" in run.text
            assert client.get("/environments/t/runs/9").status_code == 404
            assert client.get("/environments/nope").status_code == 404
            graph = client.get("/environments/t/graph.svg")
            assert graph.headers["content-type"] == "image/svg+xml" and "module.app.null_resource.node[0]" in graph.text
            plan_graph = client.get("/environments/t/runs/1/graph.svg").text
            assert "+ null_resource.node[0]" in plan_graph  # the plan's creates, marked as the terminal marks them
            headers = client.get("/").headers
            assert headers["x-frame-options"] == "DENY" and "default-src 'self'" in headers["content-security-policy"]
    finally:
        server.stop()


def read_events(response: httpx.Response, until: str, timeout: float = 60.0) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    name = ""
    deadline = time.monotonic() + timeout
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
            if name == until:
                return events
        if time.monotonic() > deadline:
            break
    return events


def test_a_live_apply_appears_and_streams_its_log(tmp_path: Path, agent: AgentProcess) -> None:
    root = monorepo(tmp_path / "ops", duration="4s")
    server = start_server(root, agent)
    apply = subprocess.Popen([*OPSGIT, "apply", "--env", "t", "--auto-approve"], cwd=root,
                             env=opsgit_environment(None, None), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with server.client() as client:
            started = time.monotonic()
            while "RUNNING" not in client.get("/environments/t").text:
                assert time.monotonic() - started < 5, "the running apply did not appear"
                time.sleep(0.2)
            # seen while it runs (its 4 s sleep), not once it is over: how fast is bench/dashboard.py's
            assert apply.poll() is None
            with client.stream("GET", "/environments/t/runs/1/events", timeout=60) as stream:
                events = read_events(stream, "end")
            statuses = [data for name, data in events if name == "status"]
            assert statuses[0]["status"] == "running" and statuses[-1]["status"] == "applied"
            assert any(s.get("progress") == {"done": 2, "total": 3} for s in statuses), statuses
            logged = [line["text"] for name, data in events if name == "log" for line in data["lines"]]
            assert "Apply complete! Resources: 3 added, 0 changed, 0 destroyed." in logged
            assert logged.index("module.app.time_sleep.settle: Creating...") < logged.index(
                "Apply complete! Resources: 3 added, 0 changed, 0 destroyed.")
            assert "APPLIED" in client.get("/environments/t/runs/1").text
        assert apply.wait(30) == 0
    finally:
        if apply.poll() is None:
            apply.kill()
        server.stop()


def test_unlock_needs_sign_in_and_csrf_and_is_recorded(tmp_path: Path, agent: AgentProcess) -> None:
    """A Consul run lock held by a running apply (Atlas: "locked by hashicorp/ops#2488"), freed
    from the dashboard: the apply sees its lock lost and stops."""
    root = monorepo(tmp_path / "ops", duration="12s")  # what runs when the lock goes finishes; nothing new starts
    env_file = root / "environments/t/env.yaml"
    env_file.write_text(env_file.read_text() + "lock: {backend: consul}\n")
    server = start_server(root, agent)
    apply = subprocess.Popen([*OPSGIT, "apply", "--env", "t", "--auto-approve"], cwd=root,
                             env=opsgit_environment(None, {"CONSUL_HTTP_ADDR": agent.address,
                                                           "GITHUB_ACTOR": "bob"}),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with server.client() as client:
            deadline = time.monotonic() + 30
            while "LOCKED" not in client.get("/").text:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            locks = client.get("/locks").text
            assert "apply" in locks and "Unlock</a>" not in locks  # not signed in: no button
            refused = client.post("/environments/t/unlock", data={"csrf": "x"})
            assert refused.status_code == 403  # not signed in: refused, and nothing changed
            assert client.get("/environments/t/unlock").headers["location"].startswith("/login")
            wrong = client.post("/login", data={"name": "mallory", "token": "guess", "next": "/"})
            assert wrong.status_code == 403 and "opsgit_session" not in wrong.headers.get("set-cookie", "")
            csrf = sign_in(client, "alice")
            forged = client.post("/environments/t/unlock", data={"csrf": "not-the-token"})
            assert forged.status_code == 403
            cross_site = client.post("/environments/t/unlock", data={})  # a form from elsewhere has no token
            assert cross_site.status_code == 403
            assert "LOCKED" in client.get("/").text
            confirm = client.get("/environments/t/unlock").text
            assert "Yes, unlock t" in confirm
            done = client.post("/environments/t/unlock", data={"csrf": csrf})
            assert done.status_code == 303
            assert "LOCKED" not in client.get("/").text
        out, _ = apply.communicate(timeout=90)
        assert apply.returncode != 0 and "run lock of t was lost" in out, out
        history = json.loads(run_opsgit("history", "--env", "t", "--json", cwd=root).stdout)
        [unlocked] = [h for h in history if h["kind"] == "unlock"]
        assert unlocked["unlocked_by"] == "alice" and unlocked["was_held_by"]["command"] == "apply"
        assert "Unlocked by alice on the dashboard" in unlocked["summary"]
    finally:
        if apply.poll() is None:
            apply.kill()
        server.stop()


def test_session_cookie_flags(tmp_path: Path, agent: AgentProcess) -> None:
    server = start_server(monorepo(tmp_path / "ops"), agent)
    try:
        response = httpx.post(server.url + "/login", data={"name": "alice", "token": TOKEN, "next": "/"})
        cookie = response.headers["set-cookie"].lower()
        assert response.status_code == 303 and "httponly" in cookie and "samesite=strict" in cookie
        assert TOKEN not in response.text and TOKEN not in cookie
        offsite = httpx.post(server.url + "/login", data={"name": "a", "token": TOKEN, "next": "//evil.example/"})
        assert offsite.headers["location"] == "/"
    finally:
        server.stop()


def test_consul_health_from_a_real_agent_updates_by_blocking_query(tmp_path: Path, agent: AgentProcess) -> None:
    host, port = agent.address.split(":")
    client = py_consul.Consul(host=host, port=int(port))
    client.agent.service.register("slug-ingress", service_id="slug-ingress-1", port=8080,
                                  check=py_consul.Check.ttl("30s"))
    client.agent.check.ttl_pass("service:slug-ingress-1", "ok: 200 in 3ms")
    server = start_server(monorepo(tmp_path / "ops"), agent)
    try:
        with server.client() as http:
            page = http.get("/consul").text
            assert "slug-ingress" in page and "Your infrastructure is healthy" in page
            assert "ok: 200 in 3ms" in page
            with http.stream("GET", "/consul/events", timeout=30) as stream:
                client.agent.check.ttl_fail("service:slug-ingress-1", "connection refused")
                events = read_events(stream, "changed", timeout=20)
            assert events and events[-1][0] == "changed"
            unhealthy = http.get("/consul", params={"hide_healthy": "1"}).text
            assert "slug-ingress" in unhealthy and "100% unhealthy" in unhealthy and "connection refused" in unhealthy
            assert "1 critical check" in unhealthy
            assert "slug-ingress" not in http.get("/consul", params={"filter": "nothing-like-it"}).text.split(
                "<h2>Services</h2>", 1)[1].split("<h2>Nodes</h2>", 1)[0]
            assert "1 critical check" in http.get("/").text  # the overview's sentence
    finally:
        client.agent.service.deregister("slug-ingress-1")
        server.stop()


def test_beyond_loopback_every_page_needs_sign_in(tmp_path: Path) -> None:
    root = monorepo(tmp_path / "ops")
    refused = run_opsgit("server", "--http-addr", f"0.0.0.0:{free_port()}", cwd=root)
    assert refused.returncode == 1 and "OPSGIT_SERVER_TOKEN" in refused.stderr and "Traceback" not in refused.stderr
    server = start_server(root, None, address=f"0.0.0.0:{free_port()}")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for path in ("/", "/locks", "/environments/t", "/consul", "/alerts"):
                response = client.get(path)
                assert response.status_code == 303 and response.headers["location"].startswith("/login"), path
            assert client.get("/environments/t/runs/1/events").status_code == 401
            sign_in(client)
            assert client.get("/").status_code == 200
    finally:
        server.stop()


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:99999"])
def test_a_bad_address_is_a_one_line_error(tmp_path: Path, address: str) -> None:
    result = run_opsgit("server", "--http-addr", address, cwd=monorepo(tmp_path / "ops"))
    assert result.returncode == 1 and "is not HOST:PORT" in result.stderr and "Traceback" not in result.stderr


def test_every_value_shown_is_masked_and_alerts_are_listed(tmp_path: Path, agent: AgentProcess) -> None:
    from opsgit.alerts.store import AlertStore
    from opsgit.alerts.watcher import AlertWatcher
    from opsgit.consul.health import Health
    from tests.conftest import write_tree

    secret = "hunter2-but-longer-9f3a"
    root = write_tree(tmp_path / "ops", {
        "environments/s/env.yaml": f"sensitive: [password]\nvariables:\n  password: {secret}\nmodules:\n  app:\n"
                                   "    source: app\n    inputs: {password: \"{{ var.password }}\"}\n",
        "modules/app/module.yaml": "variables:\n  password: {type: string}\n---\nresources:\n  null_resource.db:\n"
                                   "    triggers: {password: \"{{ var.password }}\"}\noutputs:\n"
                                   "  dsn: \"postgres://app:{{ var.password }}@db\"\n"})
    applied = run_opsgit("apply", "--env", "s", "--auto-approve", cwd=root)
    assert applied.returncode == 0, applied.stderr
    store = AlertStore(root / ".opsgit/alerts.sqlite")
    watcher = AlertWatcher(store, [], threshold=0)
    watcher.observe(Health.from_json("dc1", [{"Node": "node-10-0-4-34", "CheckID": "serfHealth",
                                              "Name": "serfHealth", "Status": "critical"}]))
    store.close()
    server = start_server(root, agent)
    try:
        with server.client() as client:
            for path in ("/", "/environments/s", "/environments/s/runs/1", "/alerts"):
                page = client.get(path)
                assert page.status_code == 200 and secret not in page.text, path
            assert "(sensitive value)" in client.get("/environments/s/runs/1").text
            assert "Critical node node-10-0-4-34 in dc1: serfHealth (critical)" in client.get("/alerts").text
    finally:
        server.stop()


def test_a_dependents_plan_names_the_upstream_run_that_caused_it(tmp_path: Path, agent: AgentProcess) -> None:
    from tests.gitops.test_affected import git
    from tests.gitops.test_environments import make_repo, reader

    root = make_repo(tmp_path, {"names": reader("zone_name")})
    for env in ("global", "names"):
        assert run_opsgit("apply", "--env", env, "--auto-approve", cwd=root).returncode == 0
    env_file = root / "environments/global/env.yaml"
    env_file.write_text(env_file.read_text().replace("zone_name: ops.internal", "zone_name: ops.example"))
    git(root, "commit", "-qam", "rename the zone")
    assert run_opsgit("apply", "--env", "global", "--auto-approve", "--plan-dependents", cwd=root).returncode == 0
    server = start_server(root, agent)
    try:
        with server.client() as client:
            page = client.get("/environments/names/runs/2").text
            assert ('<a href="/environments/global/runs/2">run #2 of global</a> changed zone_name, which names reads'
                    in page)
    finally:
        server.stop()
