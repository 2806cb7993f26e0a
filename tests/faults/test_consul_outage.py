"""Consul unreachable at random moments: `opsgit template` keeps its last good file, `opsgit exec`
keeps its child, and `opsgit lock` never lets two holders run at once."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.agent_process import AgentProcess, data_dir_agent, free_port, wait_for
from tests.conftest import REPO_ROOT, start_opsgit
from tests.faults.conftest import record, trials

# Fault trials: `make test-slow` and `make test-faults` run them.
pytestmark = pytest.mark.slow

CHILD = 'echo "start $postgres_addr" >> "$LOG"; trap \'exit 0\' TERM; while :; do sleep 0.05; done'


def test_outages_keep_files_and_children_and_updates_resume(tmp_path: Path) -> None:
    runs = trials(3)
    port = free_port()
    data = tmp_path / "data"
    agent = data_dir_agent(data, port=port)
    agent.put("service/binstore/postgres_addr", "10.0.0.0:5432")
    out, log = tmp_path / "binstore.json", tmp_path / "child.log"
    env = {**agent.env(), "LOG": str(log)}
    template = start_opsgit("template", "--template", f"roles/binstore/templates/binstore.json.j2:{out}",
                            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runner = start_opsgit("exec", "--prefix", "service/binstore", "--", "sh", "-c", CHILD, cwd=REPO_ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rng = random.Random(7)
    lost = 0
    try:
        wait_for(lambda: out.exists() and log.exists())
        for trial in range(1, runs + 1):
            kept = out.read_text()
            agent.stop(signal.SIGKILL)
            time.sleep(rng.uniform(0.5, 3.0))
            assert out.read_text() == kept and template.poll() is None and runner.poll() is None
            assert len(log.read_text().splitlines()) == trial  # the child was not stopped
            agent = data_dir_agent(data, port=port)
            agent.put("service/binstore/postgres_addr", f"10.0.0.{trial}:5432")
            wait_for(lambda trial=trial: f"10.0.0.{trial}:5432" in out.read_text(), timeout=60)
            wait_for(lambda trial=trial: f"start 10.0.0.{trial}:5432" in log.read_text(), timeout=60)
        starts = log.read_text().splitlines()
        lost = runs + 1 - len(starts)
        assert len(starts) == runs + 1  # one start, then exactly one restart per real change
    finally:
        for process in (template, runner):
            process.send_signal(signal.SIGTERM)
            process.wait(20)
        agent.stop()
    record("Consul (the dev agent) SIGKILLed and restarted under `opsgit template` and `opsgit exec`",
           trials=runs, faults=runs, lost=lost,
           note="file kept and child kept through every outage; each later change rendered and restarted once")


def holder(agent: AgentProcess, log: Path, name: str) -> subprocess.Popen[str]:
    child = f'echo "{name} start $(date +%s.%N)" >> {log}; sleep 4; echo "{name} end $(date +%s.%N)" >> {log}'
    return start_opsgit("lock", "--session-ttl", "10s", "locks/faults", "--", "sh", "-c", child, cwd=REPO_ROOT,
                        env=agent.env(), stdout=subprocess.DEVNULL)


def intervals(log: Path) -> list[tuple[str, float, float]]:
    starts: dict[str, float] = {}
    spans = []
    for line in log.read_text().splitlines():
        name, event, at = line.split()
        if event == "start":
            starts[name] = float(at)
        else:
            spans.append((name, starts.pop(name), float(at)))
    spans += [(name, at, float("inf")) for name, at in starts.items()]
    return spans


def test_a_lock_is_never_held_twice_across_an_outage(tmp_path: Path) -> None:
    runs = trials(2)
    port = free_port()
    rng = random.Random(3)
    overlaps = 0
    for trial in range(runs):
        data, log = tmp_path / f"data{trial}", tmp_path / f"lock{trial}.log"
        agent = data_dir_agent(data, port=port)
        first = holder(agent, log, "a")
        wait_for(lambda log=log: log.exists() and "a start" in log.read_text())
        second = holder(agent, log, "b")
        # b is a contender once its session exists: before that, an outage fails its start (as
        # `consul lock` does when no agent answers), which is not what this trial is about.
        wait_for(lambda agent=agent: len(requests.get(f"{agent.url}/v1/session/list", timeout=5).json()) == 2,
                 timeout=30)
        agent.stop(signal.SIGKILL)
        time.sleep(rng.uniform(0.5, 2.5))
        agent = data_dir_agent(data, port=port)
        try:
            errors = [process.communicate(timeout=90)[1] for process in (first, second)]
        finally:
            for process in (first, second):
                if process.poll() is None:
                    process.kill()
            agent.stop()
        spans = intervals(log)
        for index, (name, start, end) in enumerate(spans):
            for other, other_start, other_end in spans[index + 1:]:
                if other != name and start < other_end and other_start < end:
                    overlaps += 1
        assert overlaps == 0, spans
        assert {name for name, _, _ in spans} == {"a", "b"}, errors  # both ran, one after the other
    record("Consul SIGKILLed and restarted while `opsgit lock` holds and another waits", trials=runs,
           faults=runs, lost=overlaps, note="lost = overlapping holders; both children ran, one at a time")
