"""A small Terraform provider written for the tests, in Python: a real process that speaks
go-plugin's handshake and protocol 5 or 6 (`TESTING_PROVIDER_PROTOCOLS`, default 5; the highest
one the client also asks for is chosen, as go-plugin does), so the protocol, the value encoding
and the engine's use of plan, apply, read, import and data sources are tested on every run
without a 700 MB binary.

Its "cloud" is a JSON file (the provider configuration's `store`). Types:
- `testing_thing`: `name` (required, forces replacement), `size` (number), `secret` (sensitive),
  `tags` (map of strings), `rule` blocks (a list, each with a required `port`); `id` and
  `serial` are computed (unknown until apply; `serial` grows on every update). Schema version 1:
  version 0 called `name` `label`, and UpgradeResourceState renames it.
  Over protocol 6 it has a nested attribute too: `listener` (single), with `port` (required),
  `password` (sensitive) and `url` (computed from the name and port).
- data source `testing_lookup`: the thing called `name`, its `id` and `size`.
With `TESTING_PROVIDER_TLS=required` it insists on go-plugin's AutoMTLS: without a client
certificate in `PLUGIN_CLIENT_CERT` it will not start, and it serves only TLS, with a P-521
certificate as go-plugin makes, trusting only the client's (ended with OpenSSL in front of the
gRPC server, as Go's crypto/tls ends it in front of a real provider's).
Faults on request, by the provider's `fail` setting: `crash-on-create` exits the process in the
middle of ApplyResourceChange after the object is stored (a provider crashing mid-apply);
`partial-create` stores the object and answers with it and an error; `slow-create` stores the
object and answers 3 s later (a window for the tests to kill opsgit in).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
import uuid
from concurrent import futures
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import grpc

from opsgit.engine.resolve import UNKNOWN
from opsgit.plugin import cty
from opsgit.plugin.schema import block_from
from opsgit.plugin.stubs import goplugin, tfplugin

SERVED = [int(v) for v in os.environ.get("TESTING_PROVIDER_PROTOCOLS", "5").split(",")]
ASKED = [int(v) for v in os.environ.get("PLUGIN_PROTOCOL_VERSIONS", "").split(",") if v.isdigit()]
PROTOCOL = max((v for v in SERVED if v in ASKED), default=min(SERVED))  # go-plugin falls back to its lowest
pb, services = tfplugin(min(PROTOCOL, 6))  # "7" plays a provider of a protocol opsgit does not know
plugin_pb, plugin_services = goplugin()
MAGIC = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"


def attribute(name: str, kind: Any, **flags: bool) -> Any:
    return pb.Schema.Attribute(name=name, type=json.dumps(kind).encode(), **flags)


PROVIDER = pb.Schema(version=0, block=pb.Schema.Block(attributes=[
    attribute("store", "string", required=True), attribute("fail", "string", optional=True),
    attribute("region", "string", optional=True)]))
LISTENER = [] if PROTOCOL == 5 else [pb.Schema.Attribute(
    name="listener", optional=True, nested_type=pb.Schema.Object(nesting=pb.Schema.Object.SINGLE, attributes=[
        attribute("port", "number", required=True), attribute("password", "string", optional=True, sensitive=True),
        attribute("url", "string", computed=True)]))]
THING = pb.Schema(version=1, block=pb.Schema.Block(
    attributes=[attribute("id", "string", computed=True), attribute("name", "string", required=True),
                attribute("size", "number", optional=True), attribute("serial", "number", computed=True),
                attribute("secret", "string", optional=True, sensitive=True),
                attribute("tags", ["map", "string"], optional=True), *LISTENER],
    block_types=[pb.Schema.NestedBlock(type_name="rule", nesting=pb.Schema.NestedBlock.LIST, block=pb.Schema.Block(
        attributes=[attribute("port", "number", required=True),
                    attribute("token", "string", optional=True, sensitive=True)]))]))
LOOKUP = pb.Schema(version=0, block=pb.Schema.Block(attributes=[
    attribute("name", "string", required=True), attribute("id", "string", computed=True),
    attribute("size", "number", computed=True)]))
THING_BLOCK, LOOKUP_BLOCK = block_from(THING.block), block_from(LOOKUP.block)
PROVIDER_BLOCK = block_from(PROVIDER.block)


def value(dynamic: Any, block: Any) -> Any:
    return cty.from_msgpack(dynamic.msgpack, block.implied_type) if dynamic.msgpack else None


def dynamic(data: Any, block: Any) -> Any:
    return pb.DynamicValue(msgpack=cty.to_msgpack(data, block.implied_type))


def error(summary: str, path: str | None = None) -> Any:
    diagnostic = pb.Diagnostic(severity=pb.Diagnostic.ERROR, summary=summary)
    if path:
        diagnostic.attribute.steps.add(attribute_name=path)
    return diagnostic


class Store:
    def __init__(self) -> None:
        self.path: Path | None = None
        self.fail = ""
        self.lock = threading.Lock()

    def load(self) -> dict[str, Any]:
        assert self.path is not None
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def save(self, objects: dict[str, Any]) -> None:
        assert self.path is not None
        staged = self.path.with_suffix(".tmp")
        staged.write_text(json.dumps(objects, sort_keys=True))
        staged.replace(self.path)


class Provider(services.ProviderServicer):  # type: ignore[misc,name-defined]
    def __init__(self) -> None:
        self.store = Store()

    def GetMetadata(self, request: Any, context: Any) -> Any:
        return pb.GetMetadata.Response(resources=[pb.GetMetadata.ResourceMetadata(type_name="testing_thing")])

    def GetSchema(self, request: Any, context: Any) -> Any:  # protocol 6: GetProviderSchema
        return pb.GetProviderSchema.Response(
            provider=PROVIDER, resource_schemas={"testing_thing": THING},
            data_source_schemas={"testing_lookup": LOOKUP},
            server_capabilities=pb.ServerCapabilities(plan_destroy=True, get_provider_schema_optional=True))

    def PrepareProviderConfig(self, request: Any, context: Any) -> Any:
        config = value(request.config, PROVIDER_BLOCK)
        if config.get("region") == "nowhere":
            return pb.PrepareProviderConfig.Response(diagnostics=[error("no such region", "region")])
        return pb.PrepareProviderConfig.Response(prepared_config=request.config)

    def ValidateProviderConfig(self, request: Any, context: Any) -> Any:
        config = value(request.config, PROVIDER_BLOCK)
        if config.get("region") == "nowhere":
            return pb.ValidateProviderConfig.Response(diagnostics=[error("no such region", "region")])
        return pb.ValidateProviderConfig.Response()

    def Configure(self, request: Any, context: Any) -> Any:  # protocol 6: ConfigureProvider
        config = value(request.config, PROVIDER_BLOCK)
        self.store.path = Path(config["store"])
        self.store.fail = config.get("fail") or ""
        self.store.path.with_suffix(".pid").write_text(str(os.getpid()))  # for the tests: who to look for
        return (pb.Configure if PROTOCOL == 5 else pb.ConfigureProvider).Response()

    def ValidateResourceTypeConfig(self, request: Any, context: Any) -> Any:  # 6: ValidateResourceConfig
        response = (pb.ValidateResourceTypeConfig if PROTOCOL == 5 else pb.ValidateResourceConfig).Response
        config = value(request.config, THING_BLOCK)
        name = config.get("name")
        if isinstance(name, str) and not name.replace("-", "").isalnum():
            return response(diagnostics=[error(f"invalid name {name!r}: letters, digits and dashes only", "name")])
        return response()

    def ValidateDataSourceConfig(self, request: Any, context: Any) -> Any:  # 6: ValidateDataResourceConfig
        return (pb.ValidateDataSourceConfig if PROTOCOL == 5 else pb.ValidateDataResourceConfig).Response()

    def UpgradeResourceState(self, request: Any, context: Any) -> Any:
        state = json.loads(request.raw_state.json)
        if request.version == 0 and "label" in state:
            state["name"] = state.pop("label")
        state = {k: v for k, v in state.items() if k in THING_BLOCK.implied_type[1]}
        return pb.UpgradeResourceState.Response(upgraded_state=dynamic(THING_BLOCK.complete(state), THING_BLOCK))

    def PlanResourceChange(self, request: Any, context: Any) -> Any:
        prior = value(request.prior_state, THING_BLOCK)
        proposed = value(request.proposed_new_state, THING_BLOCK)
        if proposed is None:
            return pb.PlanResourceChange.Response(planned_state=pb.DynamicValue(msgpack=b"\xc0"))
        planned = dict(proposed)
        replace = []
        if prior is None:
            planned["id"] = UNKNOWN
            planned["serial"] = UNKNOWN
        else:
            if prior.get("name") != proposed.get("name"):
                replace.append(pb.AttributePath(steps=[pb.AttributePath.Step(attribute_name="name")]))
                planned["id"], planned["serial"] = UNKNOWN, UNKNOWN
            elif any(prior.get(k) != proposed.get(k) for k in ("size", "secret", "tags", "rule", "listener")):
                planned["serial"] = UNKNOWN
        listener = planned.get("listener")
        if listener is not None and (listener.get("url") is None or prior is None or
                                     (prior.get("listener") or {}).get("port") != listener.get("port")):
            planned["listener"] = {**listener, "url": UNKNOWN}
        return pb.PlanResourceChange.Response(planned_state=dynamic(planned, THING_BLOCK), requires_replace=replace,
                                              planned_private=b'{"planned": true}')

    def ApplyResourceChange(self, request: Any, context: Any) -> Any:
        prior = value(request.prior_state, THING_BLOCK)
        planned = value(request.planned_state, THING_BLOCK)
        with self.store.lock:
            objects = self.store.load()
            if planned is None:
                objects.pop(prior["id"], None)
                self.store.save(objects)
                return pb.ApplyResourceChange.Response(new_state=pb.DynamicValue(msgpack=b"\xc0"))
            made = dict(planned)
            if prior is None or made.get("id") is UNKNOWN:
                made["id"] = f"thing-{uuid.uuid4().hex[:10]}"
                made["serial"] = 1
            else:
                made["serial"] = int(prior.get("serial") or 0) + 1
            if made.get("listener") is not None:
                made["listener"] = {**made["listener"],
                                    "url": f"https://{made['name']}:{int(made['listener']['port'])}"}
            objects[made["id"]] = {k: v for k, v in made.items()}
            self.store.save(objects)
        if prior is None and self.store.fail == "crash-on-create":
            os._exit(2)  # the object exists; the client never hears of it
        if prior is None and self.store.fail == "slow-create":
            time.sleep(3)  # the object exists; the answer takes a while (a cloud API waiting on it)
        if prior is None and self.store.fail == "partial-create":
            return pb.ApplyResourceChange.Response(new_state=dynamic(made, THING_BLOCK), private=b"partial",
                                                   diagnostics=[error("waiting for the thing to be ready: timeout")])
        return pb.ApplyResourceChange.Response(new_state=dynamic(made, THING_BLOCK), private=b'{"applied": true}')

    def ReadResource(self, request: Any, context: Any) -> Any:
        state = value(request.current_state, THING_BLOCK)
        found = self.store.load().get(state["id"])
        if found is None:
            return pb.ReadResource.Response(new_state=pb.DynamicValue(msgpack=b"\xc0"))
        return pb.ReadResource.Response(new_state=dynamic(THING_BLOCK.complete(found), THING_BLOCK),
                                        private=request.private)

    def ImportResourceState(self, request: Any, context: Any) -> Any:
        state = THING_BLOCK.complete({"id": request.id})
        return pb.ImportResourceState.Response(imported_resources=[pb.ImportResourceState.ImportedResource(
            type_name="testing_thing", state=dynamic(state, THING_BLOCK))])

    def ReadDataSource(self, request: Any, context: Any) -> Any:
        config = value(request.config, LOOKUP_BLOCK)
        for found in self.store.load().values():
            if found.get("name") == config["name"]:
                return pb.ReadDataSource.Response(state=dynamic(
                    {"name": found["name"], "id": found["id"], "size": found.get("size")}, LOOKUP_BLOCK))
        return pb.ReadDataSource.Response(diagnostics=[error(f"no thing called {config['name']!r}", "name")])

    def Stop(self, request: Any, context: Any) -> Any:
        return pb.Stop.Response()

    # protocol 6 names the same calls differently
    GetProviderSchema = GetSchema
    ConfigureProvider = Configure
    ValidateResourceConfig = ValidateResourceTypeConfig
    ValidateDataResourceConfig = ValidateDataSourceConfig

    def StopProvider(self, request: Any, context: Any) -> Any:
        return pb.StopProvider.Response()


class Controller(plugin_services.GRPCControllerServicer):  # type: ignore[misc,name-defined]
    def __init__(self, server: Any) -> None:
        self.server = server

    def Shutdown(self, request: Any, context: Any) -> Any:
        threading.Thread(target=lambda: self.server.stop(0.2), daemon=True).start()
        return plugin_pb.Empty()


def serve_tls(outer: Path, inner: Path, client_pem: str) -> str:
    """A TLS front on `outer` for the plaintext gRPC server on `inner`: P-521, client certificate
    required and checked against `client_pem`. Returns the handshake's certificate field."""
    import asyncio
    import base64
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP521R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "HashiCorp")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA512()))
    folder = outer.parent
    (folder / "server.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=client_pem)
    context.set_alpn_protocols(["h2"])

    async def pump(reader: Any, writer: Any) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def carry(reader: Any, writer: Any) -> None:
        inner_reader, inner_writer = await asyncio.open_unix_connection(str(inner))
        await asyncio.gather(pump(reader, inner_writer), pump(inner_reader, writer))

    loop = asyncio.new_event_loop()
    loop.run_until_complete(asyncio.start_unix_server(carry, path=str(outer), ssl=context))
    threading.Thread(target=loop.run_forever, daemon=True).start()
    der = certificate.public_bytes(serialization.Encoding.DER)
    return base64.b64encode(der).decode().rstrip("=")  # go-plugin's RawStdEncoding


def main() -> None:
    if os.environ.get("TF_PLUGIN_MAGIC_COOKIE") != MAGIC:
        print("This binary is a plugin. These are not meant to be executed directly.", file=sys.stderr)
        sys.exit(1)
    tls = os.environ.get("TESTING_PROVIDER_TLS") == "required"
    if tls and not os.environ.get("PLUGIN_CLIENT_CERT"):
        print("This provider serves only over AutoMTLS: no PLUGIN_CLIENT_CERT was given", file=sys.stderr)
        sys.exit(1)
    socket = Path(tempfile.mkdtemp()) / "plugin.sock"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    services.add_ProviderServicer_to_server(Provider(), server)
    plugin_services.add_GRPCControllerServicer_to_server(Controller(server), server)
    inner = socket.with_name("inner.sock") if tls else socket
    server.add_insecure_port(f"unix:{inner}")
    server.start()
    certificate = serve_tls(socket, inner, os.environ["PLUGIN_CLIENT_CERT"]) if tls else ""
    print("Starting testing provider", file=sys.stderr, flush=True)
    print(f"1|{PROTOCOL}|unix|{socket}|grpc|{certificate}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
