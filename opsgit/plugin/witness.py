"""The witness: a small process between opsgit and a provider that outlives opsgit.

opsgit starts it in place of the provider binary (`python -m opsgit.plugin.witness RECEIPTS
BINARY`); it starts the binary in its own process group, relays its handshake line (with its own
socket in place of the provider's), copies its standard error, and passes every gRPC call on
unchanged (bytes in, bytes out; every method of every service, the provider's and go-plugin's).
It does what a provider cannot:

- **Receipts.** A create's answer is written to disk (`RECEIPTS/<name>.bin`, fsynced) before it is
  passed on, when opsgit marked the call with a receipt name. If opsgit is killed while a provider
  creates an object, the provider still finishes and answers; the witness keeps that answer, and
  the next run records the object instead of creating it a second time (`receipts`).
- **No orphans.** Its standard input is a pipe from opsgit: when that closes (opsgit ended,
  however it ended), it lets the calls in flight finish, stops the provider (go-plugin's Shutdown,
  then the process) and exits. When the provider dies, it exits with the provider's status.
- **AutoMTLS** (`OPSGIT_AUTO_MTLS=1`): it sends the provider a client certificate and ends the
  provider's TLS itself (`mtls`), so that connection too outlives opsgit.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

MESSAGE_LIMIT = 256 << 20
RECEIPT_KEY = "opsgit-receipt"
STREAMING = frozenset({"/plugin.GRPCStdio/StreamStdio"})
SHUTDOWN = "/plugin.GRPCController/Shutdown"


class Calls:
    """The calls in flight, so the end waits for them."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = threading.Condition()

    def __enter__(self) -> None:
        with self._idle:
            self._count += 1

    def __exit__(self, *_: object) -> None:
        with self._idle:
            self._count -= 1
            self._idle.notify_all()

    def wait_idle(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._count == 0)


def write_receipt(folder: Path, name: str, data: bytes) -> None:
    """`data` under `name`, durably and whole (a reader sees the old file or the new one)."""
    staged = folder / f".{name}.tmp"
    with open(staged, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staged, folder / f"{name}.bin")
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class Forward:
    """A grpc generic handler that sends every call on to the provider, as bytes."""

    def __init__(self, channel: Any, receipts: Path, calls: Calls) -> None:
        self.channel = channel
        self.receipts = receipts
        self.calls = calls

    def handler(self, method: str) -> Any:
        import grpc

        if method in STREAMING:
            # go-plugin's stdio stream lasts as long as the provider: it is not a call in flight
            # (the end does not wait for it), and it ends when opsgit lets go of it.
            def stream(request: bytes, context: Any) -> Any:
                upstream = self.channel.unary_stream(method)(request)
                context.add_callback(upstream.cancel)
                try:
                    yield from upstream
                except grpc.RpcError as error:
                    if error.code() != grpc.StatusCode.CANCELLED:
                        context.abort(error.code(), error.details() or "")
            return grpc.unary_stream_rpc_method_handler(stream)

        def unary(request: bytes, context: Any) -> bytes:
            metadata = dict(context.invocation_metadata())
            with self.calls:
                try:
                    answer: bytes = self.channel.unary_unary(method)(request, timeout=context.time_remaining())
                except grpc.RpcError as error:
                    context.abort(error.code(), error.details() or "")
                name = metadata.get(RECEIPT_KEY)
                if name and method.endswith("/ApplyResourceChange") and _safe(name):
                    write_receipt(self.receipts, name, answer)
                return answer
        return grpc.unary_unary_rpc_method_handler(unary)


def _safe(name: str) -> bool:
    return name.replace("-", "").isalnum()


def _handler_class() -> Any:
    import grpc

    class Generic(grpc.GenericRpcHandler):
        def __init__(self, forward: Forward) -> None:
            self.forward = forward

        def service(self, details: Any) -> Any:
            return self.forward.handler(details.method)

    return Generic


def main() -> int:
    import subprocess

    receipts, binary = Path(sys.argv[1]), sys.argv[2]
    env = dict(os.environ)
    client = None
    if env.pop("OPSGIT_AUTO_MTLS", "") == "1":
        from opsgit.plugin.mtls import client_certificate

        client = client_certificate()
        env["PLUGIN_CLIENT_CERT"] = client.pem
    try:
        provider = subprocess.Popen([binary], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env)
    except OSError as error:
        print(f"cannot start {binary}: {error.strerror}", file=sys.stderr, flush=True)
        return 126
    copier = threading.Thread(target=_copy_stderr, args=(provider,), daemon=True)
    copier.start()
    assert provider.stdout is not None
    line = ""
    for raw in provider.stdout:
        line = raw.decode("utf-8", "replace").strip()
        if line:
            break
    if not line:
        code = provider.wait()
        copier.join(timeout=2)  # what it said before it went is what opsgit quotes
        return _exit_status(code)
    fields = line.split("|")
    if len(fields) < 5 or fields[0] != "1" or fields[4] != "grpc":
        print(line, flush=True)  # opsgit says what is wrong with it
        for _ in sys.stdin:
            pass
        provider.kill()
        return 1
    target = f"unix:{fields[3]}" if fields[2] == "unix" else fields[3]
    relay = None
    certificate = fields[5] if len(fields) > 5 and len(fields[5]) > 50 else ""  # go-plugin's own test
    if certificate:
        if client is None:
            print("the provider answered with TLS though no client certificate was sent", file=sys.stderr, flush=True)
            provider.kill()
            return 1
        from opsgit.plugin.mtls import TlsRelay, server_certificate_pem

        relay = TlsRelay(target, server_certificate_pem(certificate), client)
        target = relay.address
    threading.Thread(target=_follow, args=(provider, copier), daemon=True).start()
    return _serve(provider, target, receipts, fields[1], relay)


def _serve(provider: Any, target: str, receipts: Path, protocol: str, relay: Any) -> int:
    import grpc

    options = [("grpc.max_receive_message_length", MESSAGE_LIMIT), ("grpc.max_send_message_length", MESSAGE_LIMIT)]
    channel = grpc.insecure_channel(target, options=options)
    calls = Calls()
    directory = tempfile.mkdtemp(prefix="opsgit-witness-")  # 0700: only this user can connect
    socket = os.path.join(directory, "witness.sock")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=options,
                         handlers=[_handler_class()(Forward(channel, receipts, calls))])
    server.add_insecure_port(f"unix:{socket}")
    server.start()
    print(f"1|{protocol}|unix|{socket}|grpc|", flush=True)
    for _ in sys.stdin:  # until opsgit closes the pipe, or is gone
        pass
    calls.wait_idle()  # what the provider was asked to do, it finishes, and its answer is kept
    server.stop(grace=1.0)
    _stop_provider(channel, provider, protocol)
    channel.close()
    if relay is not None:
        relay.close()
    with contextlib.suppress(OSError):
        os.unlink(socket)
        os.rmdir(directory)
    return 0


def _copy_stderr(provider: Any) -> None:
    """The provider's standard error, onto the witness's (opsgit reads it; after opsgit has gone,
    it is still read, so the provider never blocks or dies writing it)."""
    for raw in provider.stderr:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.buffer.write(raw)
            sys.stderr.buffer.flush()


def _follow(provider: Any, copier: threading.Thread) -> None:
    """A provider that exits by itself (a crash) takes the witness with it, with its status, so
    opsgit sees the exit it would have seen."""
    code = provider.wait()
    copier.join(timeout=2)  # the last of its standard error
    os._exit(_exit_status(code))


def _exit_status(code: int) -> int:
    return 128 - code if code < 0 else code


def _stop_provider(channel: Any, provider: Any, protocol: str) -> None:
    """Once nothing is in flight: the protocol's StopProvider, go-plugin's Shutdown, then the
    provider's process if it is still there. (A run that is interrupted lets the calls it made
    finish rather than have the provider cancel them: a create cut short can leave an object
    no answer describes.)"""
    import subprocess

    stop = "/tfplugin5.Provider/Stop" if protocol == "5" else f"/tfplugin{protocol}.Provider/StopProvider"
    for method in (stop, SHUTDOWN):
        with contextlib.suppress(Exception):
            channel.unary_unary(method)(b"", timeout=2.0)
    try:
        provider.wait(timeout=2.0)
    except subprocess.TimeoutExpired:
        provider.kill()
        provider.wait()


if __name__ == "__main__":
    sys.exit(main())
