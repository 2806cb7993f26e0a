"""A provider binary as a running process: go-plugin's handshake, the gRPC channel, its output
drained, and its end (Shutdown, then the process group).

The handshake (hashicorp/go-plugin): the client sets the magic cookie and the protocol versions
it speaks; the plugin prints one line `CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT` on stdout once it
listens. The provider is started through the witness (`witness`), a small process that relays
the handshake, the output and every call, keeps the answers of creates, and stops the provider
when opsgit ends however it ends. By default AutoMTLS is not requested: the plugin then listens
on an owner-only unix socket, which is the isolation. With `auto_mtls` the witness sends a client
certificate and carries the connection over TLS (`mtls`: grpcio cannot complete go-plugin's P-521
handshake, so the TLS session is ended with OpenSSL).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opsgit.providers.base import ProviderError

MAGIC_COOKIE_KEY = "TF_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
SUPPORTED_PROTOCOLS = (5, 6)
HANDSHAKE_TIMEOUT = 60.0  # go-plugin's own StartTimeout; a 700 MB binary on a cold disk is slow
MESSAGE_LIMIT = 256 << 20  # the servers' own cap; the aws provider's schema alone is 4.7 MiB
# Providers log megabytes of trace JSON unless told not to (their levels are set in their own
# process); a user's own settings win.
QUIET = {"TF_LOG_SDK": "OFF", "TF_LOG_SDK_PROTO": "OFF", "TF_LOG_PROVIDER": "OFF", "TF_LOG_SDK_FRAMEWORK": "OFF",
         "TF_LOG_SDK_HELPER_SCHEMA": "OFF", "TF_LOG_SDK_MUX": "OFF"}

_RUNNING: set[PluginProcess] = set()


class PluginError(ProviderError):
    """A provider process that would not start, answer or stay up."""


class PluginProcess:
    """One started provider: `channel` is its gRPC connection, `protocol` the version agreed."""

    def __init__(self, name: str, binary: Path, receipts: Path, environment: Mapping[str, str] | None = None,
                 timeout: float = HANDSHAKE_TIMEOUT, auto_mtls: bool = False) -> None:
        import sys

        self.name = name
        self.binary = binary
        self.auto_mtls = auto_mtls
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=60)
        self.address = ""
        env = {**QUIET, **(environment if environment is not None else os.environ),
               MAGIC_COOKIE_KEY: MAGIC_COOKIE,
               "PLUGIN_PROTOCOL_VERSIONS": ",".join(map(str, SUPPORTED_PROTOCOLS)),
               "PLUGIN_MIN_PORT": "10000", "PLUGIN_MAX_PORT": "25000"}
        env.pop("PLUGIN_CLIENT_CERT", None)
        env["OPSGIT_AUTO_MTLS"] = "1" if auto_mtls else ""
        if not binary.is_file():
            raise PluginError(f"provider {name}: cannot start {binary}: no such file")
        if not os.access(binary, os.X_OK):
            raise PluginError(f"provider {name}: {binary} is not executable",
                              hint=f"chmod +x {binary}, or install the provider again")
        receipts.mkdir(parents=True, exist_ok=True)
        # The witness gets a pipe as its standard input: it ends (and stops the provider) when
        # the pipe closes, that is when this process ends, however it ends.
        self.process = subprocess.Popen([sys.executable, "-m", "opsgit.plugin.witness", str(receipts), str(binary)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env=env, start_new_session=True)
        _RUNNING.add(self)
        _stop_on_sigterm()
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._drain_stdout, args=(lines,), daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        try:
            self.protocol, self.address = self._handshake(lines, timeout)
            self.channel = self._connect()
        except BaseException:
            self.stop()
            raise
        threading.Thread(target=self._stream_stdio, daemon=True).start()

    # -- start ---------------------------------------------------------------------------------

    def _drain_stdout(self, lines: queue.Queue[str | None]) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for raw in self.process.stdout:
                lines.put(raw.decode("utf-8", "replace").strip())
        lines.put(None)

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        with self.process.stderr:
            for raw in self.process.stderr:
                self.stderr_tail.append(raw.decode("utf-8", "replace").rstrip())

    def _handshake(self, lines: queue.Queue[str | None], timeout: float) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise PluginError(f"provider {self.name}: {self.binary} printed no handshake within {timeout:g} s",
                                  hint="is it a Terraform provider binary?") from None
            if line is None:
                time.sleep(0.1)  # let stderr's last lines arrive
                raise PluginError(f"provider {self.name}: {self.binary} exited before its handshake"
                                  f" (exit {self.process.poll()}){self._said()}",
                                  hint=None if self.auto_mtls else
                                  "if it asks for AutoMTLS (a client certificate), set auto_mtls: true in "
                                  "its provider settings")
            if line:
                break
        fields = line.split("|")
        if len(fields) < 5 or fields[0] != "1":
            raise PluginError(f"provider {self.name}: {self.binary} printed {line[:80]!r}, not a plugin handshake",
                              hint="is it a Terraform provider binary?")
        if not fields[1].isdigit() or int(fields[1]) not in SUPPORTED_PROTOCOLS:
            raise PluginError(f"provider {self.name} speaks plugin protocol {fields[1]}; opsgit speaks "
                              f"{', '.join(map(str, SUPPORTED_PROTOCOLS))}",
                              hint="use a provider version built for protocol 5 or 6 (Terraform 0.15 and later)")
        if fields[4] != "grpc":
            raise PluginError(f"provider {self.name} offers {fields[4]!r}, not grpc",
                              hint="providers for Terraform 0.12 and later speak grpc")
        network, address = fields[2], fields[3]  # the witness's own socket, plaintext
        return int(fields[1]), f"unix:{address}" if network == "unix" else address

    def _connect(self) -> Any:
        import grpc

        channel = grpc.insecure_channel(self.address, options=[
            ("grpc.max_receive_message_length", MESSAGE_LIMIT), ("grpc.max_send_message_length", MESSAGE_LIMIT)])
        try:
            grpc.channel_ready_future(channel).result(timeout=10)
        except grpc.FutureTimeoutError:
            channel.close()
            raise PluginError(f"provider {self.name}: no gRPC answer on {self.address}{self._said()}") from None
        return channel

    def _stream_stdio(self) -> None:
        """go-plugin swaps the plugin's stdout and stderr for this stream; it must be read, or a
        plugin that prints can block."""
        from opsgit.plugin.stubs import goplugin

        _, services = goplugin()
        try:
            for chunk in services.GRPCStdioStub(self.channel).StreamStdio(_empty()):
                self.stderr_tail.extend(chunk.data.decode("utf-8", "replace").splitlines())
        except Exception:  # the plugin has no such stream (not go-plugin), or has stopped
            return

    def _said(self) -> str:
        tail = [line for line in self.stderr_tail if line.strip()][-3:]
        return (": " + " / ".join(tail))[:400] if tail else ""

    # -- stop ----------------------------------------------------------------------------------

    def stop(self, grace: float = 2.0) -> None:
        """The witness is told to end (its pipe closes): it lets calls in flight finish, stops the
        provider (StopProvider, go-plugin's Shutdown, then the process) and exits; the process
        group goes if it has not after the grace."""
        if self not in _RUNNING:
            return
        _RUNNING.discard(self)
        channel = getattr(self, "channel", None)
        if channel is not None:
            channel.close()
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=grace + 4.0 if channel is not None else 0.5)
        except subprocess.TimeoutExpired:
            if channel is not None:
                # Calls are still in flight (opsgit is being interrupted): the witness waits for
                # them, keeps their answers and stops the provider by itself; killing it now
                # could cut a create short.
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # it never served: the witness and the provider
            self.process.wait()

    def crashed(self) -> str | None:
        """Why the process is gone, if it is (for an UNAVAILABLE answer)."""
        code = self.process.poll()
        return None if code is None else f"provider {self.name} exited (exit {code}){self._said()}"


def _empty() -> Any:
    from google.protobuf import empty_pb2

    return empty_pb2.Empty()


def _stop_on_sigterm() -> None:
    """SIGTERM ends opsgit through its exit path, so the providers it started (each in a
    session of its own, away from the terminal's Ctrl-C) are shut down with it, not orphaned."""
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


@atexit.register
def stop_all() -> None:
    """Every provider this process started ends with it (also after an error or Ctrl-C)."""
    for plugin in list(_RUNNING):
        plugin.stop(grace=1.0)
