"""A provider binary as a running process: go-plugin's handshake, the gRPC channel, its output
drained, and its end (Shutdown, then the process group).

The handshake (hashicorp/go-plugin): the client sets the magic cookie and the protocol versions
it speaks; the plugin prints one line `CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT` on stdout once it
listens. AutoMTLS is not requested: the plugin then listens on an owner-only unix socket, which
is the isolation (grpcio cannot complete go-plugin's P-521 TLS handshake; see the reference).
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
SUPPORTED_PROTOCOLS = (5,)
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

    def __init__(self, name: str, binary: Path, environment: Mapping[str, str] | None = None,
                 timeout: float = HANDSHAKE_TIMEOUT) -> None:
        self.name = name
        self.binary = binary
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=60)
        self.address = ""
        env = {**QUIET, **(environment if environment is not None else os.environ),
               MAGIC_COOKIE_KEY: MAGIC_COOKIE,
               "PLUGIN_PROTOCOL_VERSIONS": ",".join(map(str, SUPPORTED_PROTOCOLS)),
               "PLUGIN_MIN_PORT": "10000", "PLUGIN_MAX_PORT": "25000"}
        env.pop("PLUGIN_CLIENT_CERT", None)
        try:
            self.process = subprocess.Popen([str(binary)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, env=env, start_new_session=True)
        except PermissionError:
            raise PluginError(f"provider {name}: {binary} is not executable",
                              hint=f"chmod +x {binary}, or install the provider again") from None
        except OSError as error:
            raise PluginError(f"provider {name}: cannot start {binary}: {error.strerror}") from None
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
        for raw in self.process.stdout:
            lines.put(raw.decode("utf-8", "replace").strip())
        lines.put(None)

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
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
                                  f" (exit {self.process.poll()}){self._said()}")
            if line:
                break
        fields = line.split("|")
        if len(fields) < 5 or fields[0] != "1":
            raise PluginError(f"provider {self.name}: {self.binary} printed {line[:80]!r}, not a plugin handshake",
                              hint="is it a Terraform provider binary?")
        if not fields[1].isdigit() or int(fields[1]) not in SUPPORTED_PROTOCOLS:
            raise PluginError(f"provider {self.name} speaks plugin protocol {fields[1]}; opsgit speaks "
                              f"{', '.join(map(str, SUPPORTED_PROTOCOLS))}",
                              hint="use a provider version built for protocol 5 (binaries named ..._x5)")
        if fields[4] != "grpc":
            raise PluginError(f"provider {self.name} offers {fields[4]!r}, not grpc",
                              hint="providers for Terraform 0.12 and later speak grpc")
        network, address = fields[2], fields[3]
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
        """Shutdown over go-plugin's controller, then the process group if it is still there."""
        if self not in _RUNNING:
            return
        _RUNNING.discard(self)
        channel = getattr(self, "channel", None)
        if channel is not None:
            from opsgit.plugin.stubs import goplugin

            messages, services = goplugin()
            with contextlib.suppress(Exception):  # it closes the connection as it goes
                services.GRPCControllerStub(channel).Shutdown(messages.Empty(), timeout=grace)
            channel.close()
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if self.address.startswith("unix:"):
            with contextlib.suppress(OSError):
                os.unlink(self.address[len("unix:"):])

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
