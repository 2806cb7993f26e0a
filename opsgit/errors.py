"""The one error hierarchy of opsgit, wherever each class is defined.

    OpsgitError
     └── UserError              rc 1: a one-line message naming the file, the line and the fix
          ├── ConfigError       the repository's files are invalid (YAML, schema, names)
          ├── RenderError       a template failed to render, or rendered something invalid
          │    └── CycleError       the resource graph has a dependency cycle
          ├── ToolError         an external tool (packer, git) is missing or refused the input
          ├── ConsulError       Consul answered with an error, or could not be reached
          │    └── ConsulUnavailable   no answer at all, after the retries
          ├── ProviderError     a provider call failed (opsgit.providers.base); names the address
          │    ├── PluginError       a provider plugin would not start, answer or stay up (opsgit.plugin.process)
          │    ├── DiagnosticError   a provider plugin reported errors, with the attribute path (opsgit.plugin.client)
          │    └── PartialCreate     a plugin's create failed once the object existed; kept (opsgit.plugin.provider)
          ├── RegistryError     a provider registry unreachable, or a package off its checksums (opsgit.plugin.install)
          ├── StalePlan         a saved plan no longer matches state or configuration (opsgit.engine.apply)
          ├── StateConflict     a conditional state write was refused (opsgit.engine.backends.s3)
          ├── Locked            the run lock is held by someone else (opsgit.locks)
          ├── LockLost          the run lock was taken away while this run held it (opsgit.locks)
          ├── LockError         a Consul lock prefix used another way (opsgit.consul.lock)
          └── LockTimeout       a Consul lock not acquired in time (opsgit.consul.lock)

Anything that is not an OpsgitError is a bug in opsgit: the top-level handler maps it to
rc 3 and writes a log.
"""

from __future__ import annotations

from typing import Self


class OpsgitError(Exception):
    """Base of every error opsgit raises on purpose."""


class UserError(OpsgitError):
    """A problem the user can fix; shown as `file:line: message (hint)` on one line."""

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.hint = hint

    @classmethod
    def at(cls, source: str, message: str, hint: str | None = None) -> Self:
        """The error located at a `file:line` source, as resources record where they were written."""
        file, _, line = source.rpartition(":")
        if not line.isdigit():
            file, line = source, ""
        return cls(message, file=file or None, line=int(line) if line else None, hint=hint)

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        text = f"{where}{self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return " ".join(text.split("\n"))


class ConfigError(UserError):
    """The repository's files are invalid."""


class RenderError(UserError):
    """A template failed to render or rendered something invalid."""


class CycleError(RenderError):
    """The resource graph has a dependency cycle."""


class ToolError(UserError):
    """An external tool is missing or refused its input."""


class ConsulError(UserError):
    """Consul answered with an error status; keeps the request and the response."""

    def __init__(self, message: str, *, request: object = None, response: object = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.request = request
        self.response = response

    @property
    def status(self) -> int | None:
        return getattr(self.response, "status", None)


class ConsulUnavailable(ConsulError):
    """Consul could not be reached (connection refused, timed out) even after retrying."""
