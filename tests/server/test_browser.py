"""The dashboard in a real browser (Debian's Chromium, driven by Playwright): a running apply's
page follows it live to APPLIED, a signed-in user frees a lock with the Unlock button and its
confirmation, and the pages fit a phone's width."""

from __future__ import annotations

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
