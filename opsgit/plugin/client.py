"""One provider's RPCs as Python calls: values in and out through `cty`, diagnostics turned into
opsgit's errors (the attribute path named), a crashed provider reported with what it last said.

Calls follow Terraform's sequence (the reference's section 5): the schema first (or from the
disk cache), the provider's configuration validated and configured once per process, then
validate, plan, apply, read, import and data-source reads, concurrently from the engine's workers.
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsgit import output
from opsgit.plugin import cty
from opsgit.plugin.process import PluginError, PluginProcess
from opsgit.plugin.schema import Block, ProviderSchema, cache_path
from opsgit.plugin.stubs import tfplugin
from opsgit.providers.base import ProviderError

TERRAFORM_VERSION = "1.11.4"  # the Terraform a provider is told it serves (some check it)
CALL_TIMEOUT = 30 * 60.0      # one call; creating a database can take this long


class DiagnosticError(ProviderError):
    """Errors a provider reported; `path` is the attribute they are about, when they say."""

    def __init__(self, message: str, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class Dialect:
    """The names one protocol version gives the calls that differ between 5 and 6 (each call's
    messages are named as the call is, but for the schema's)."""

    schema: str
    validate_provider: str
    validate_resource: str
    validate_data: str
    configure: str


DIALECTS = {
    5: Dialect("GetSchema", "PrepareProviderConfig", "ValidateResourceTypeConfig", "ValidateDataSourceConfig",
               "Configure"),
    6: Dialect("GetProviderSchema", "ValidateProviderConfig", "ValidateResourceConfig", "ValidateDataResourceConfig",
               "ConfigureProvider"),
}


@dataclass(frozen=True)
class Planned:
    state: Any
    requires_replace: tuple[tuple[str | int, ...], ...]
    private: bytes
    legacy: bool


class ProviderClient:
    def __init__(self, name: str, process: PluginProcess, cache: Path | None = None, binary_hash: str = "") -> None:
        self.name = name
        self.process = process
        self.messages, services = tfplugin(process.protocol)
        self.dialect = DIALECTS[process.protocol]
        self.stub = services.ProviderStub(process.channel)
        self._cache = cache_path(cache, binary_hash, process.protocol) if cache is not None and binary_hash else None
        self._binary_hash = binary_hash
        self._schema: ProviderSchema | None = None
        self._lock = threading.Lock()

    # -- schema and configuration -------------------------------------------------------------

    @property
    def schema(self) -> ProviderSchema:
        with self._lock:
            if self._schema is None:
                self._schema = self._load_schema()
            return self._schema

    def _load_schema(self) -> ProviderSchema:
        response = self.messages.GetProviderSchema.Response()
        if self._cache is not None and self._cache.is_file():
            response.ParseFromString(self._cache.read_bytes())
            if response.server_capabilities.get_provider_schema_optional:
                return ProviderSchema(response)
        response = self._call(self.dialect.schema, self.messages.GetProviderSchema.Request(), "reading its schema")
        self._diagnostics(response.diagnostics, "reading its schema")
        if self._cache is not None and response.server_capabilities.get_provider_schema_optional:
            self._cache.parent.mkdir(parents=True, exist_ok=True)
            staged = self._cache.with_suffix(".tmp")
            staged.write_bytes(response.SerializeToString())
            staged.replace(self._cache)
        return ProviderSchema(response)

    def configure(self, config: Mapping[str, Any]) -> None:
        block = self.schema.provider.block
        try:
            value = self._dynamic(block.complete(dict(config)), block)
        except cty.CtyError as error:
            raise DiagnosticError(f"provider {self.name}: {error}", error.path) from None
        # Validating a configuration is a function of the binary and the configuration, and it can
        # be slow (the aws provider takes 4.7 s over an `endpoints` block): a configuration this
        # binary accepted before is not checked again. Configure still sees every value.
        validated = None
        if self._cache is not None:
            key = hashlib.sha256(self._binary_hash.encode() + b"\0" + value.msgpack).hexdigest()
            validated = self._cache.parent.parent / "validated" / key
        if validated is None or not validated.exists():
            name = self.dialect.validate_provider
            prepared = self._call(name, getattr(self.messages, name).Request(config=value),
                                  "checking its configuration")
            self._diagnostics(prepared.diagnostics, "configuration", who=f"provider {self.name}")
            if validated is not None:
                with contextlib.suppress(OSError):
                    validated.parent.mkdir(parents=True, exist_ok=True)
                    validated.touch()
        name = self.dialect.configure
        configured = self._call(name, getattr(self.messages, name).Request(
            terraform_version=TERRAFORM_VERSION, config=value, client_capabilities=self._capabilities()),
            "configuring it")
        self._diagnostics(configured.diagnostics, "configuration", who=f"provider {self.name}")

    # -- managed resources --------------------------------------------------------------------

    def validate(self, type_name: str, block: Block, config: Any, who: str) -> None:
        name = self.dialect.validate_resource
        response = self._call(name, getattr(self.messages, name).Request(
            type_name=type_name, config=self._dynamic(config, block), client_capabilities=self._capabilities()), who)
        self._diagnostics(response.diagnostics, "validate", who=who)

    def plan(self, type_name: str, block: Block, prior: Any, proposed: Any, config: Any, prior_private: bytes,
             who: str) -> Planned:
        response = self._call("PlanResourceChange", self.messages.PlanResourceChange.Request(
            type_name=type_name, prior_state=self._dynamic(prior, block),
            proposed_new_state=self._dynamic(proposed, block), config=self._dynamic(config, block),
            prior_private=prior_private,
            provider_meta=self.messages.DynamicValue(msgpack=b"\xc0"), client_capabilities=self._capabilities()), who)
        self._diagnostics(response.diagnostics, "plan", who=who)
        return Planned(state=self._value(response.planned_state, block), private=response.planned_private,
                       requires_replace=tuple(_path(p) for p in response.requires_replace),
                       legacy=response.legacy_type_system)

    def apply(self, type_name: str, block: Block, prior: Any, planned: Any, config: Any, planned_private: bytes,
              who: str, receipt: str = "") -> tuple[Any, bytes]:
        """ApplyResourceChange; with `receipt`, the witness keeps the answer under that name."""
        from opsgit.plugin.witness import RECEIPT_KEY

        response = self._call("ApplyResourceChange", self.messages.ApplyResourceChange.Request(
            type_name=type_name, prior_state=self._dynamic(prior, block), planned_state=self._dynamic(planned, block),
            config=self._dynamic(config, block), planned_private=planned_private,
            provider_meta=self.messages.DynamicValue(msgpack=b"\xc0")), who,
            metadata=((RECEIPT_KEY, receipt),) if receipt else None)
        state = self._value(response.new_state, block)
        # A failed apply may still have made the object: the caller keeps what it returned.
        self._diagnostics(response.diagnostics, "apply", who=who, partial=(state, response.private))
        return state, response.private

    def read(self, type_name: str, block: Block, state: Any, private: bytes, who: str) -> tuple[Any, bytes]:
        response = self._call("ReadResource", self.messages.ReadResource.Request(
            type_name=type_name, current_state=self._dynamic(state, block), private=private,
            provider_meta=self.messages.DynamicValue(msgpack=b"\xc0"), client_capabilities=self._capabilities()), who)
        self._diagnostics(response.diagnostics, "refresh", who=who)
        return self._value(response.new_state, block), response.private

    def upgrade(self, type_name: str, block: Block, version: int, raw_json: bytes, who: str) -> Any:
        response = self._call("UpgradeResourceState", self.messages.UpgradeResourceState.Request(
            type_name=type_name, version=version, raw_state=self.messages.RawState(json=raw_json)), who)
        self._diagnostics(response.diagnostics, "state upgrade", who=who)
        return self._value(response.upgraded_state, block)

    def import_state(self, type_name: str, resource_id: str, who: str) -> list[tuple[str, Any, bytes]]:
        response = self._call("ImportResourceState", self.messages.ImportResourceState.Request(
            type_name=type_name, id=resource_id, client_capabilities=self._capabilities()), who)
        self._diagnostics(response.diagnostics, "import", who=who)
        found = []
        for imported in response.imported_resources:
            block = self.schema.resource(imported.type_name).block
            found.append((imported.type_name, self._value(imported.state, block), imported.private))
        return found

    # -- data sources ------------------------------------------------------------------------

    def read_data(self, type_name: str, block: Block, config: Any, who: str) -> Any:
        value = self._dynamic(config, block)
        name = self.dialect.validate_data
        validated = self._call(name, getattr(self.messages, name).Request(type_name=type_name, config=value), who)
        self._diagnostics(validated.diagnostics, "validate", who=who)
        response = self._call("ReadDataSource", self.messages.ReadDataSource.Request(
            type_name=type_name, config=value, provider_meta=self.messages.DynamicValue(msgpack=b"\xc0"),
            client_capabilities=self._capabilities()), who)
        self._diagnostics(response.diagnostics, "read", who=who)
        return self._value(response.state, block)

    # -- plumbing ------------------------------------------------------------------------------

    def _capabilities(self) -> Any:
        return self.messages.ClientCapabilities(deferral_allowed=False, write_only_attributes_allowed=True)

    def _dynamic(self, value: Any, block: Block) -> Any:
        return self.messages.DynamicValue(msgpack=cty.to_msgpack(value, block.implied_type))

    def _value(self, dynamic: Any, block: Block) -> Any:
        if dynamic.msgpack:
            return cty.from_msgpack(dynamic.msgpack, block.implied_type)
        if dynamic.json:
            import json

            return json.loads(dynamic.json)
        return None

    def applied(self, answer: bytes, block: Block) -> tuple[Any, bytes]:
        """A kept ApplyResourceChange answer (a receipt): the new state and private data."""
        response = self.messages.ApplyResourceChange.Response.FromString(answer)
        return self._value(response.new_state, block), response.private

    def _call(self, method: str, request: Any, what: str, metadata: Any = None) -> Any:
        import grpc

        try:
            return getattr(self.stub, method)(request, timeout=CALL_TIMEOUT, metadata=metadata)
        except grpc.RpcError as error:
            code = error.code() if hasattr(error, "code") else None
            if code == grpc.StatusCode.UNAVAILABLE:
                with contextlib.suppress(subprocess.TimeoutExpired):  # a crash: let it finish dying
                    self.process.process.wait(timeout=2)
            crashed = self.process.crashed()
            if crashed or code == grpc.StatusCode.UNAVAILABLE:
                raise PluginError(f"{what}: {crashed or f'provider {self.name} did not respond'}",
                                  hint="the provider crashed (its last output is quoted); the state keeps "
                                       "what was recorded") from None
            raise PluginError(f"{what}: provider {self.name} failed {method}: "
                              f"{error.details() if hasattr(error, 'details') else error}") from None

    def _diagnostics(self, diagnostics: Any, phase: str, *, who: str = "", partial: Any = None) -> None:
        errors = []
        for diagnostic in diagnostics:
            path = _path(diagnostic.attribute) if diagnostic.HasField("attribute") else ()
            where = ".".join(str(p) for p in path)
            text = diagnostic.summary + (f": {diagnostic.detail}" if diagnostic.detail else "")
            text = " ".join(text.split())
            if where:
                text = f"{where}: {text}"
            if diagnostic.severity == 2:
                output.warn(f"{who or self.name}: {text}")
            else:
                errors.append((text, path))
        if errors:
            more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
            message = "; ".join(e[0] for e in errors[:3]) + more
            error = DiagnosticError(f"{who or 'provider ' + self.name}: {message}", errors[0][1])
            error.partial = partial  # type: ignore[attr-defined]
            raise error


def _path(attribute_path: Any) -> tuple[str | int, ...]:
    steps: list[str | int] = []
    for step in attribute_path.steps:
        selector = step.WhichOneof("selector")
        if selector == "attribute_name":
            steps.append(step.attribute_name)
        elif selector == "element_key_string":
            steps.append(step.element_key_string)
        elif selector == "element_key_int":
            steps.append(step.element_key_int)
    return tuple(steps)
