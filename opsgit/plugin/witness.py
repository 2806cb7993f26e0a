"""The witness: a small process between opsgit and a provider that outlives opsgit.

opsgit's gRPC calls to a provider go through it unchanged (bytes in, bytes out; every method
of every service, the provider's and go-plugin's). It does two things a provider cannot:

- **Receipts.** A create's answer is written to disk (`<receipts>/<name>.bin`, fsynced) before it
  is passed on, when opsgit marked the call with a receipt name. If opsgit is killed while a
  provider creates an object, the provider still finishes and answers; the witness keeps that
  answer, and the next run records the object instead of creating it a second time.
- **No orphans.** It watches its standard input, a pipe from opsgit: when that closes (opsgit
  ended, however it ended), it lets the calls in flight finish, stops the provider (go-plugin's
  Shutdown, then its process group) and exits.

opsgit starts it beside the provider and tells it, on that pipe, where the provider listens (and
the TLS material when the provider serves AutoMTLS: the TLS session then ends in here, so that
it outlives opsgit too). It answers `READY <address>` on standard output.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
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
            def stream(request: bytes, context: Any) -> Any:
                with self.calls:
                    try:
                        yield from self.channel.unary_stream(method)(request)
                    except grpc.RpcError as error:
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

    class Generic(grpc.GenericRpcHandler):  # type: ignore[misc]
        def __init__(self, forward: Forward) -> None:
            self.forward = forward

        def service(self, details: Any) -> Any:
            return self.forward.handler(details.method)

    return Generic


def main() -> int:
    import grpc

    receipts = Path(sys.argv[1])
    told = json.loads(sys.stdin.readline() or "{}")
    if not told:
        return 1  # opsgit went before it said where the provider is
    target = str(told["target"])
    relay = None
    if told.get("server_certificate"):
        from opsgit.plugin.mtls import ClientCertificate, TlsRelay

        relay = TlsRelay(target, told["server_certificate"], ClientCertificate(told["client_pem"], told["client_key"]))
        target = relay.address
    options = [("grpc.max_receive_message_length", MESSAGE_LIMIT), ("grpc.max_send_message_length", MESSAGE_LIMIT)]
    channel = grpc.insecure_channel(target, options=options)
    calls = Calls()
    directory = tempfile.mkdtemp(prefix="opsgit-witness-")  # 0700: only this user can connect
    socket = os.path.join(directory, "witness.sock")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=options,
                         handlers=[_handler_class()(Forward(channel, receipts, calls))])
    server.add_insecure_port(f"unix:{socket}")
    server.start()
    print(f"READY unix:{socket}", flush=True)
    for _ in sys.stdin:  # until opsgit closes the pipe, or is gone
        pass
    server.stop(grace=None)  # no new calls; those in flight go on
    calls.wait_idle()
    _stop_provider(channel, int(told.get("pid") or 0))
    channel.close()
    if relay is not None:
        relay.close()
    with contextlib.suppress(OSError):
        os.unlink(socket)
        os.rmdir(directory)
    return 0


def _stop_provider(channel: Any, pid: int) -> None:
    """go-plugin's Shutdown, then the provider's process group if it is still there."""
    with contextlib.suppress(Exception):
        channel.unary_unary(SHUTDOWN)(b"", timeout=2.0)
    if pid <= 0:
        return
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
