"""`opsgit exec`: envconsul's job. Run a command with Consul KV (and services) as its environment.

One watch per prefix or service feeds one event queue; the main thread alone owns the child.
The child starts once every prefix has keys and every service a healthy instance. A change that
alters the computed environment restarts it (splay, kill signal to its group, SIGKILL after the
kill timeout) or, with a reload signal, signals it instead; a change that computes the same
environment (the same value written again) does nothing. Signals to opsgit go to the child; the
child's exit ends opsgit with its exit code. While Consul is unreachable the child keeps running
with the environment it has.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opsgit import output
from opsgit.consul.client import Consul
from opsgit.consul.watch import watch
from opsgit.errors import ConsulError
from opsgit.runtime.child import FORWARDED, Child
from opsgit.runtime.consul_data import Dependency, describe, fetch
from opsgit.runtime.environment import (
    EnvironmentOptions,
    Rejected,
    compute_environment,
    normalise_prefix,
    prefix_variables,
    service_variables,
)

STOPPING = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class ExecOptions:
    prefixes: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    environment: EnvironmentOptions = field(default_factory=EnvironmentOptions)
    once: bool = False
    kill_signal: int = signal.SIGTERM
    kill_timeout: float = 30.0
    reload_signal: int | None = None
    splay: float = 0.0
    wait: tuple[float, float] | None = None

    def dependencies(self) -> list[Dependency]:
        return ([("tree", normalise_prefix(prefix)) for prefix in self.prefixes]
                + [("service", name, "", "passing") for name in self.services])


def compute_child_environment(parent: Mapping[str, str], options: ExecOptions, data: Mapping[Dependency, Any]
                              ) -> tuple[dict[str, str], list[Rejected]] | None:
    """The environment and the variables that could not be in it, or None while waiting."""
    sources: list[dict[str, str]] = []
    naming = options.environment.naming
    for dependency in options.dependencies():
        found = data.get(dependency)
        if not found:
            return None
        if dependency[0] == "tree":
            variables = prefix_variables(dependency[1], found, naming)
            if not variables:
                return None
        else:
            variables = service_variables(dependency[1], found, naming)
        sources.append(variables)
    return compute_environment(parent, sources, options.environment)


def changed_names(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    return sorted(name for name in set(old) | set(new) if old.get(name) != new.get(name))


class ExecRunner:
    def __init__(self, consul: Consul, options: ExecOptions, command: Sequence[str],
                 parent: Mapping[str, str] | None = None) -> None:
        self.consul = consul
        self.options = options
        self.command = list(command)
        self.parent = dict(os.environ if parent is None else parent)
        self.events: queue.SimpleQueue[tuple[str, Any, Any]] = queue.SimpleQueue()
        self.data: dict[Dependency, Any] = {}
        self.child: Child | None = None
        self.child_environment: dict[str, str] | None = None
        self._stop_watching = threading.Event()
        self._announced_waiting: set[Dependency] = set()
        self._warned: set[Rejected] = set()

    def run(self) -> int:
        """Supervise until the child exits; returns its exit code."""
        previous = {signum: signal.signal(signum, self._on_signal) for signum in FORWARDED}
        try:
            for dependency in self.options.dependencies():
                threading.Thread(target=self._watch, args=(dependency,), daemon=True,
                                 name=f"opsgit-exec-watch-{dependency[1]}").start()
            return self._loop()
        finally:
            self._stop_watching.set()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.events.put(("signal", signum, None))  # SimpleQueue.put is safe in a signal handler

    def _loop(self) -> int:
        pending = False
        quiet_until = hard_until = 0.0
        while True:
            timeout = None if not pending else max(0.0, min(quiet_until, hard_until) - time.monotonic())
            try:
                kind, subject, payload = self.events.get(timeout=timeout)
            except queue.Empty:
                kind, subject, payload = "settled", None, None
            if kind == "data":
                if self.options.once and self.child is not None:
                    continue  # --once: whatever the watches still deliver is not watched for
                self.data[subject] = payload
                now = time.monotonic()
                if self.options.wait and self.child is not None:
                    if not pending:
                        hard_until = now + self.options.wait[1]
                    quiet_until = now + self.options.wait[0]
                    pending = True
                    continue
                self._apply_data()
            elif kind == "settled":
                pending = False
                self._apply_data()
            elif kind == "exited":
                if self.child is not None and subject is self.child:
                    code = self.child.returncode
                    if code != 0:
                        output.log(f"opsgit exec: the child exited with {code}")
                    return code
            elif kind == "signal":
                stopped = self._signalled(subject)
                if stopped is not None:
                    return stopped

    def _signalled(self, signum: int) -> int | None:
        if self.child is None:
            return 128 + signum if signum in STOPPING else None
        if signum not in STOPPING:
            self.child.send(signum)
            return None
        self._stop_watching.set()
        return self.child.stop(signum, self.options.kill_timeout)

    def _apply_data(self) -> None:
        computed = compute_child_environment(self.parent, self.options, self.data)
        if computed is None:
            self._announce_waiting()
            return
        environment, rejected = computed
        for bad in rejected:
            if bad not in self._warned:
                self._warned.add(bad)
                output.log(f"warning: skipping variable {bad.name!r}: {bad.reason}")
        if self.child is None:
            self._start(environment)
            if self.options.once:
                self._stop_watching.set()
            return
        if environment == self.child_environment:
            return
        names = changed_names(self.child_environment or {}, environment)
        if self.options.splay:
            time.sleep(random.uniform(0, self.options.splay))
        if self.options.reload_signal is not None:
            signal_name = signal.Signals(self.options.reload_signal).name
            output.log(f"opsgit exec: {', '.join(names)} changed; sending {signal_name}")
            self.child.send(self.options.reload_signal)
            self.child_environment = environment
            return
        output.log(f"opsgit exec: {', '.join(names)} changed; restarting the child")
        self.child.stop(self.options.kill_signal, self.options.kill_timeout)
        self._start(environment)

    def _start(self, environment: dict[str, str]) -> None:
        child = Child(self.command, environment)
        self.child, self.child_environment = child, environment
        threading.Thread(target=self._report_exit, args=(child,), daemon=True).start()

    def _report_exit(self, child: Child) -> None:
        child.exited.wait()
        self.events.put(("exited", child, None))

    def _announce_waiting(self) -> None:
        for dependency in self.options.dependencies():
            if dependency in self.data and not self._has_data(dependency) \
                    and dependency not in self._announced_waiting:
                self._announced_waiting.add(dependency)
                output.log(f"opsgit exec: waiting for {describe(dependency)} in Consul")

    def _has_data(self, dependency: Dependency) -> bool:
        found = self.data.get(dependency)
        if not found:
            return False
        if dependency[0] == "tree":
            return any(pair.key and not pair.key.endswith("/") for pair in found)
        return True

    def _watch(self, dependency: Dependency) -> None:
        def complain(error: ConsulError, delay: float) -> None:
            state = "the child keeps its environment" if self.child is not None else "the child is not started"
            output.log(f"warning: Consul unreachable ({error}); {state}; retrying {describe(dependency)} in {delay:g}s")

        for _, data in watch(lambda index, wait: fetch(self.consul, dependency, index, wait),
                             stop=self._stop_watching, on_error=complain):
            self.events.put(("data", dependency, data))
