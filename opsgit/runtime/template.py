"""`opsgit template`: consul-template's job with Jinja.

Each template is rendered with the Consul functions of `consul_data`; every dependency it touched
is watched with one blocking query, shared by all templates that use it, and a change re-renders
only the templates that read it. Output is written atomically in the destination's directory and
only when its bytes changed; a template's command runs after a change, once per round even when
several templates share it. While Consul is away the last good files stay as they are.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shlex
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from opsgit import output
from opsgit.consul.client import Consul
from opsgit.consul.watch import watch
from opsgit.errors import ConsulError, RenderError, UserError
from opsgit.render.jinja import compile_template, make_environment, render
from opsgit.repo.text import read_text
from opsgit.runtime.consul_data import Dependency, Functions, MissingKey, describe, fetch
from opsgit.runtime.template_config import TemplateSpec
from opsgit.runtime.template_functions import HOST_FILTERS, HOST_GLOBALS


class TemplateRunner:
    def __init__(self, consul: Consul, specs: Sequence[TemplateSpec], *, dry: bool = False,
                 wait: tuple[float, float] | None = None, missing_key_timeout: float | None = None,
                 give_up_after: float | None = None) -> None:
        self.consul = consul
        self.specs = list(specs)
        self.dry = dry
        self.wait = wait
        self.missing_key_timeout = missing_key_timeout
        self.give_up_after = give_up_after
        self.data: dict[Dependency, Any] = {}
        self.uses: dict[TemplateSpec, set[Dependency]] = {}
        self.environment = make_environment(Path.cwd(), host=True)
        self.environment.filters.update(HOST_FILTERS)  # consul-template's helpers, on hosts only
        self.environment.globals.update(HOST_GLOBALS)
        self._templates: dict[tuple[Path, str, str], jinja2.Template] = {}
        self.failing_since: dict[Dependency, float] = {}
        for spec in self.specs:
            self._template(spec)  # syntax errors are reported before anything is fetched or written

    def _template(self, spec: TemplateSpec) -> jinja2.Template:
        key = (spec.source, spec.left_delimiter, spec.right_delimiter)
        if key not in self._templates:
            try:
                source = read_text(spec.source, str(spec.source))
            except OSError as error:
                raise UserError(f"cannot read template {spec.source}: {error.strerror}") from None
            environment = self.environment
            if (spec.left_delimiter, spec.right_delimiter) != ("{{", "}}"):
                environment = environment.overlay(variable_start_string=spec.left_delimiter,
                                                  variable_end_string=spec.right_delimiter)
            self._templates[key] = compile_template(environment, source, str(spec.source))
        return self._templates[key]

    def _load(self, dependency: Dependency) -> Any:
        return fetch(self.consul, dependency)[1]

    def render_one(self, spec: TemplateSpec) -> str:
        functions = Functions(self.data, self._load)
        try:
            text = render(self._template(spec), str(spec.source), functions.globals())
        finally:
            self.uses[spec] = functions.used
        return text

    def write(self, spec: TemplateSpec, text: str) -> bool:
        """Write if the bytes differ: atomically (or in place), keeping mode and owner unless
        perms say otherwise."""
        content = text.encode("utf-8")
        if self.dry:
            output.say(f"> {spec.destination}\n{text}".removesuffix("\n"))
            return False
        destination = spec.destination
        try:
            if destination.read_bytes() == content:
                return False
            existing: os.stat_result | None = destination.stat()
        except FileNotFoundError:
            existing = None
        except IsADirectoryError:
            raise UserError(f"cannot write {destination}: it is a directory", hint="give a file path") from None
        except OSError as error:
            raise UserError(f"cannot read {destination}: {error.strerror}") from None
        mode = spec.perms if spec.perms is not None else existing.st_mode & 0o7777 if existing else 0o644
        check_confined(spec)
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            if spec.backup and existing is not None:
                backup = destination.with_name(destination.name + ".bak")
                backup.unlink(missing_ok=True)
                os.link(destination, backup)  # a hard link: the destination never goes missing
            if spec.in_place and existing is not None:
                self._write_in_place(destination, content, mode)
            else:
                self._write_atomically(destination, content, mode, existing)
        except OSError as error:
            raise UserError(f"cannot write {destination}: {error.strerror}",
                            hint="check the directory exists and is writable") from None
        return True

    @staticmethod
    def _write_atomically(destination: Path, content: bytes, mode: int, existing: os.stat_result | None) -> None:
        fd, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, mode)
            if existing is not None and (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.chown(temporary, existing.st_uid, existing.st_gid)
                except PermissionError:
                    output.log(f"warning: cannot keep the owner of {destination} (uid {existing.st_uid}) without root")
            os.replace(temporary, destination)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    @staticmethod
    def _write_in_place(destination: Path, content: bytes, mode: int) -> None:
        """Rewrite the file itself, keeping its inode: a single bind-mounted file does not see a rename."""
        with open(destination, "r+b") as handle:
            handle.write(content)
            handle.truncate()
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(destination, mode)

    def run_commands(self, changed: Sequence[TemplateSpec]) -> None:
        seen: set[tuple[str, ...]] = set()
        for spec in changed:
            if not spec.command or spec.command in seen:
                continue
            seen.add(spec.command)
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
            output.log(f"waiting for key {missing[0]!r} in Consul")
            self.data.pop(("key", missing[0]), None)
            time.sleep(min(1.0, max(0.0, (deadline or time.monotonic() + 1) - time.monotonic())))

    def run_forever(self, stop: threading.Event) -> int:
        """Render, then re-render whatever a Consul change touches, until `stop` is set. Each
        touched template waits out its own quiescence (`wait`, or the global one) first."""
        changes: queue.Queue[tuple[Dependency, Any]] = queue.Queue()
        watched: set[Dependency] = set()
        due: dict[TemplateSpec, tuple[float, float]] = {}  # spec -> (quiet until, at the latest)
        self.once_without_waiting()
        while not stop.is_set():
            for dependency in set().union(*self.uses.values()) - watched:
                watched.add(dependency)
                threading.Thread(target=self._watch, args=(dependency, changes, stop), daemon=True).start()
            self._give_up_if_unreachable_too_long()
            now = time.monotonic()
            timeout = min([0.5, *(max(0.0, min(times) - now) for times in due.values())])
            try:
                dependency, data = changes.get(timeout=timeout)
            except queue.Empty:
                pass
            else:
                self.data[dependency] = data
                now = time.monotonic()
                for spec in self.specs:
                    if dependency in self.uses.get(spec, ()):
                        wait = spec.wait or self.wait
                        hard = due[spec][1] if spec in due else now + (wait[1] if wait else 0.0)
                        due[spec] = (now + (wait[0] if wait else 0.0), hard)
            now = time.monotonic()
            ready = [spec for spec, times in due.items() if min(times) <= now]
            if ready:
                for spec in ready:
                    del due[spec]
                self.render_round(ready)
        return 0

    def once_without_waiting(self) -> None:
        missing = self.render_round(self.specs)
        for path in missing:
            output.log(f"waiting for key {path!r} in Consul")

    def _give_up_if_unreachable_too_long(self) -> None:
        if self.give_up_after is None or not self.failing_since:
            return
        dependency, since = min(self.failing_since.items(), key=lambda item: item[1])
        if time.monotonic() - since >= self.give_up_after:
            raise UserError(f"Consul unreachable for {self.give_up_after:g}s (watching {describe(dependency)}); "
                            "giving up, the files keep their last content",
                            hint="check the agent, or raise --give-up-after")

    def _watch(self, dependency: Dependency, changes: queue.Queue[tuple[Dependency, Any]],
               stop: threading.Event) -> None:
        def complain(error: ConsulError, delay: float) -> None:
            self.failing_since.setdefault(dependency, time.monotonic())
            output.log(f"warning: Consul unreachable ({error}); keeping the last files, "
                       f"retrying {describe(dependency)} in {delay:g}s")

        def recovered() -> None:
            self.failing_since.pop(dependency, None)

        first = True
        for _, data in watch(lambda index, wait: fetch(self.consul, dependency, index, wait), stop=stop,
                             on_error=complain, on_success=recovered):
            if first:
                first = False
                if self.data.get(dependency) == data:
                    continue
            changes.put((dependency, data))



def check_confined(spec: TemplateSpec) -> None:
    """Refuse a destination that is, or whose directory really is, outside the allowed places:
    a role's template must not write through a symlink planted in /etc to somewhere else."""
    if not spec.confine:
        return
    destination = spec.destination
    if destination.is_symlink():
        raise UserError(f"refusing to write {destination}: it is a symbolic link",
                        hint="host templates replace files, never what a link points to")
    existing = destination.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    real = Path(os.path.realpath(existing))
    allowed = [Path(os.path.realpath(root)) for root in spec.confine]
    if not any(real == root or root in real.parents for root in allowed):
        raise UserError(f"refusing to write {destination}: its directory is really {real}, outside "
                        f"{', '.join(str(root) for root in spec.confine)}",
                        hint="a symbolic link leads out of the places host templates may write")
