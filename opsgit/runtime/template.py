"""`opsgit template`: consul-template's job with Jinja.

Each template is rendered with the Consul functions of `consul_data`; every dependency it touched
is watched with one blocking query, shared by all templates that use it, and a change re-renders
only the templates that read it. Output is written atomically in the destination's directory and
only when its bytes changed; a template's command runs after a change, once per round even when
several templates share it. While Consul is away the last good files stay as they are.
"""

from __future__ import annotations

import os
import queue
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from opsgit.consul.client import Consul
from opsgit.consul.watch import watch
from opsgit.errors import ConsulError, RenderError, UserError
from opsgit.render.jinja import compile_template, make_environment, render
from opsgit.runtime.consul_data import Dependency, Functions, MissingKey, fetch


@dataclass(frozen=True)
class TemplateSpec:
    source: Path
    destination: Path
    command: tuple[str, ...] = ()
    perms: int | None = None
    backup: bool = False
    command_timeout: float = 30.0


def parse_spec(text: str) -> TemplateSpec:
    """`SRC:DEST[:COMMAND]`; the command is split like a shell would, but run without one."""
    parts = text.split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise UserError(f"malformed --template {text!r}", hint="use SOURCE:DESTINATION[:COMMAND]")
    try:
        command = tuple(shlex.split(parts[2])) if len(parts) == 3 and parts[2].strip() else ()
    except ValueError as error:
        raise UserError(f"malformed command in --template {text!r}: {error}") from None
    return TemplateSpec(Path(parts[0]), Path(parts[1]), command)


class TemplateRunner:
    def __init__(self, consul: Consul, specs: Sequence[TemplateSpec], *, dry: bool = False,
                 wait: tuple[float, float] | None = None, missing_key_timeout: float | None = None) -> None:
        self.consul = consul
        self.specs = list(specs)
        self.dry = dry
        self.wait = wait
        self.missing_key_timeout = missing_key_timeout
        self.data: dict[Dependency, Any] = {}
        self.uses: dict[Path, set[Dependency]] = {}
        self.environment = make_environment(Path.cwd(), host=True)
        self._templates: dict[Path, jinja2.Template] = {}
        self.renders = 0
        self.writes = 0
        self.commands_run: list[tuple[str, ...]] = []
        for spec in self.specs:
            self._template(spec)  # syntax errors are reported before anything is fetched or written

    def _template(self, spec: TemplateSpec) -> jinja2.Template:
        if spec.source not in self._templates:
            try:
                source = spec.source.read_text(encoding="utf-8")
            except OSError as error:
                raise UserError(f"cannot read template {spec.source}: {error.strerror}") from None
            self._templates[spec.source] = compile_template(self.environment, source, str(spec.source))
        return self._templates[spec.source]

    def _load(self, dependency: Dependency) -> Any:
        return fetch(self.consul, dependency)[1]

    def render_one(self, spec: TemplateSpec) -> str:
        functions = Functions(self.data, self._load)
        try:
            text = render(self._template(spec), str(spec.source), functions.globals())
        finally:
            self.uses[spec.source] = functions.used
        self.renders += 1
        return text

    def write(self, spec: TemplateSpec, text: str) -> bool:
        """Write if the bytes differ; atomically, keeping the file's mode unless perms say otherwise."""
        content = text.encode("utf-8")
        if self.dry:
            sys.stdout.write(f"> {spec.destination}\n{text}")
            sys.stdout.flush()
            return False
        destination = spec.destination
        try:
            if destination.read_bytes() == content:
                return False
            mode = destination.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644
        except OSError as error:
            raise UserError(f"cannot read {destination}: {error.strerror}") from None
        if spec.perms is not None:
            mode = spec.perms
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, mode)
            if spec.backup and destination.exists():
                os.replace(destination, destination.with_name(destination.name + ".bak"))
            os.replace(temporary, destination)
        except OSError as error:
            raise UserError(f"cannot write {destination}: {error.strerror}",
                            hint="check the directory exists and is writable") from None
        self.writes += 1
        return True

    def run_commands(self, changed: Sequence[TemplateSpec]) -> None:
        seen: set[tuple[str, ...]] = set()
        for spec in changed:
            if not spec.command or spec.command in seen:
                continue
            seen.add(spec.command)
            self.commands_run.append(spec.command)
            try:
                result = subprocess.run(list(spec.command), timeout=spec.command_timeout, check=False)
            except FileNotFoundError:
                raise UserError(f"command not found: {spec.command[0]}") from None
            except subprocess.TimeoutExpired:
                raise UserError(f"command {shlex.join(spec.command)} timed out after {spec.command_timeout:g}s") \
                    from None
            if result.returncode != 0:
                raise UserError(f"command {shlex.join(spec.command)} exited with {result.returncode}")

    def render_round(self, specs: Sequence[TemplateSpec]) -> list[str]:
        """Render and write `specs`; returns the keys still missing (templates not written)."""
        missing: list[str] = []
        changed: list[TemplateSpec] = []
        for spec in specs:
            try:
                text = self.render_one(spec)
            except MissingKey as absent:
                missing.append(absent.path)
                continue
            except RenderError as error:
                if isinstance(getattr(error, "__cause__", None), MissingKey):
                    missing.append(error.__cause__.path)  # type: ignore[union-attr]
                    continue
                raise
            if self.write(spec, text):
                changed.append(spec)
        self.run_commands(changed)
        return missing

    def once(self) -> int:
        deadline = None if self.missing_key_timeout is None else time.monotonic() + self.missing_key_timeout
        while True:
            missing = self.render_round(self.specs)
            if not missing:
                return 0
            if deadline is not None and time.monotonic() >= deadline:
                raise UserError(f"key {missing[0]!r} does not exist in Consul (waited "
                                f"{self.missing_key_timeout:g}s)", hint="write it, or use key_or_default()")
            print(f"waiting for key {missing[0]!r} in Consul", file=sys.stderr, flush=True)
            self.data.pop(("key", missing[0]), None)
            time.sleep(min(1.0, max(0.0, (deadline or time.monotonic() + 1) - time.monotonic())))

    def run_forever(self, stop: threading.Event) -> int:
        """Render, then re-render whatever a Consul change touches, until `stop` is set."""
        changes: queue.Queue[tuple[Dependency, Any]] = queue.Queue()
        watched: set[Dependency] = set()
        self.once_without_waiting()
        while not stop.is_set():
            for dependency in set().union(*self.uses.values()) - watched:
                watched.add(dependency)
                threading.Thread(target=self._watch, args=(dependency, changes, stop), daemon=True).start()
            try:
                dependency, data = changes.get(timeout=0.5)
            except queue.Empty:
                continue
            updates = {dependency: data}
            if self.wait:
                quiet_until = time.monotonic() + self.wait[0]
                hard_stop = time.monotonic() + self.wait[1]
                while time.monotonic() < min(quiet_until, hard_stop):
                    try:
                        more, value = changes.get(timeout=max(0.0, min(quiet_until, hard_stop) - time.monotonic()))
                    except queue.Empty:
                        break
                    updates[more] = value
                    quiet_until = time.monotonic() + self.wait[0]
            touched = [spec for spec in self.specs if self.uses.get(spec.source, set()) & set(updates)]
            self.data.update(updates)
            self.render_round(touched)
        return 0

    def once_without_waiting(self) -> None:
        missing = self.render_round(self.specs)
        for path in missing:
            print(f"waiting for key {path!r} in Consul", file=sys.stderr, flush=True)

    def _watch(self, dependency: Dependency, changes: queue.Queue[tuple[Dependency, Any]],
               stop: threading.Event) -> None:
        def complain(error: ConsulError, delay: float) -> None:
            print(f"warning: Consul unreachable ({error}); keeping the last files, retrying in {delay:g}s",
                  file=sys.stderr, flush=True)

        first = True
        for _, data in watch(lambda index, wait: fetch(self.consul, dependency, index, wait), stop=stop,
                             on_error=complain):
            if first:
                first = False
                if self.data.get(dependency) == data:
                    continue
            changes.put((dependency, data))
