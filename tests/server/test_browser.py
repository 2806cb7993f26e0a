"""The dashboard in a real browser (Debian's Chromium, driven by Playwright): a running apply's
page follows it live to APPLIED, a signed-in user frees a lock with the Unlock button and its
confirmation, and the pages fit a phone's width."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.agent_process import AgentProcess
from tests.conftest import OPSGIT, opsgit_environment
from tests.server.conftest import TOKEN, monorepo, start_server

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is installed by `make test`")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


def apply(root: Path, agent: AgentProcess) -> subprocess.Popen[bytes]:
    with (root.parent / "apply.log").open("ab") as log:
        return subprocess.Popen([*OPSGIT, "apply", "--env", "t", "--auto-approve"], cwd=root,
                                env=opsgit_environment(None, {"CONSUL_HTTP_ADDR": agent.address}),
                                stdout=log, stderr=subprocess.STDOUT)


def test_a_live_run_then_unlock_from_the_browser(tmp_path: Path, agent: AgentProcess, browser: Any) -> None:
    root = monorepo(tmp_path / "ops", duration="4s")
    env_file = root / "environments/t/env.yaml"
    env_file.write_text(env_file.read_text() + "lock: {backend: consul}\n")
    server = start_server(root, agent)
    first = apply(root, agent)
    page = browser.new_page()
    try:
        deadline = time.monotonic() + 20
        while not (root / ".opsgit/runs/t/000001.json").exists():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        page.goto(server.url + "/environments/t/runs/1")
        expect(page.locator("#run-status")).to_have_text("APPLIED", timeout=30_000)
        log = page.inner_text("#log")
        assert "module.app.time_sleep.settle: Creation complete after" in log and "Apply complete!" in log
        assert log.count("Apply complete!") == 1  # streamed once, not repeated by the live updates
        assert first.wait(30) == 0
        page.goto(server.url + "/environments/t")
        page.click("text=#1")  # dev's history, run numbers as links: the apply's page
        assert "Apply complete! Resources: 3 added, 0 changed, 0 destroyed." in page.inner_text("#log")

        (root / "modules/app/module.yaml").write_text((root / "modules/app/module.yaml").read_text()
                                                     .replace("count: 2", "count: 3").replace("4s", "20s"))
        second = apply(root, agent)
        deadline = time.monotonic() + 20
        while "LOCKED" not in (page.goto(server.url + "/") and page.content()):
            assert second.poll() is None and time.monotonic() < deadline, (root.parent / "apply.log").read_text()
            time.sleep(0.3)
        page.click("text=Sign in")
        page.fill("input[name=name]", "alice")
        page.fill("input[name=token]", TOKEN)
        page.click("button[type=submit]")
        page.goto(server.url + "/environments/t")
        assert "This environment is currently locked by" in page.inner_text("section.lock")
        page.click("text=Unlock")
        page.click("#confirm-unlock")
        page.wait_for_url(server.url + "/environments/t")
        assert "free" in page.inner_text("section.lock")
        assert second.wait(60) != 0  # the apply saw its lock go
        locks = subprocess.run([*OPSGIT, "locks"], cwd=root, capture_output=True, text=True, check=True,
                               env=opsgit_environment(None, {"CONSUL_HTTP_ADDR": agent.address}))
        assert locks.stdout.splitlines()[1].split()[:3] == ["t", "consul", "free"]
        history = subprocess.run([*OPSGIT, "history", "--env", "t", "--json"], cwd=root, capture_output=True,
                                 text=True, check=True, env=opsgit_environment(None, None))
        assert [h["unlocked_by"] for h in json.loads(history.stdout) if h["kind"] == "unlock"] == ["alice"]
        cookies = {c["name"]: c for c in page.context.cookies()}
        assert cookies["opsgit_session"]["httpOnly"] and cookies["opsgit_session"]["sameSite"] == "Strict"
    finally:
        page.close()
        for process in (first,):
            if process.poll() is None:
                process.kill()
        server.stop()


def test_pages_fit_a_phone(tmp_path: Path, agent: AgentProcess, browser: Any) -> None:
    root = monorepo(tmp_path / "ops")
    assert subprocess.run([*OPSGIT, "apply", "--env", "t", "--auto-approve"], cwd=root,
                          env=opsgit_environment(None, None), capture_output=True, check=False).returncode == 0
    server = start_server(root, agent)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        for path in ("/", "/environments/t", "/locks", "/images", "/consul", "/alerts"):
            page.goto(server.url + path)
            width = page.evaluate("document.body.scrollWidth")
            assert width <= 390, f"{path} is {width}px wide on a 390px screen"
    finally:
        page.close()
        server.stop()


def test_a_failed_image_build_a_critical_check_and_its_alert(tmp_path: Path, agent: AgentProcess,
                                                             browser: Any) -> None:
    import consul as py_consul

    from opsgit.images.packer import packer_binary
    from tests.conftest import copy_example, run_opsgit

    root = copy_example(tmp_path / "ops")
    if packer_binary() is not None:
        failed = run_opsgit("image", "--var", "output_dir=/proc/opsgit", cwd=root,
                            extra={"HC_ROLE": "binstore", "CONSUL_HTTP_ADDR": agent.address}, timeout=300)
        assert failed.returncode == 1, failed.stderr
    server = start_server(root, agent, "--alerts", "--change-threshold", "1s")
    host, port = agent.address.split(":")
    client = py_consul.Consul(host=host, port=int(port))
    page = browser.new_page()
    try:
        if packer_binary() is not None:
            page.goto(server.url + "/images")
            assert "ERRORED" in page.inner_text("table")
            page.click("text=#1")
            assert "Packer log" in page.content()
            assert "binstore/dev" in page.inner_text("#log")
        client.agent.service.register("billing", service_id="billing-1", port=9000, check=py_consul.Check.ttl("1h"))
        client.agent.check.ttl_pass("service:billing-1", "ok")
        page.goto(server.url + "/consul")
        expect(page.locator("#consul-body")).to_contain_text("billing", timeout=15_000)
        client.agent.check.ttl_fail("service:billing-1", "billing: connection refused")
        # the page updates itself (a blocking query, then an event): no reload here
        expect(page.locator("#consul-body")).to_contain_text("billing: connection refused", timeout=15_000)
        expect(page.locator("#health-sentence")).to_contain_text("1 critical check")
        deadline = time.monotonic() + 20
        while "Critical service billing (100% unhealthy)" not in (page.goto(server.url + "/alerts") and
                                                                   page.inner_text("table")):
            assert time.monotonic() < deadline, "the alert was not listed"
            time.sleep(0.5)
    finally:
        client.agent.service.deregister("billing-1")
        page.close()
        server.stop()
