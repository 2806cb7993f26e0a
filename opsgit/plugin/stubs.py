"""The protocol's messages and service stubs, compiled from the .proto files beside this module
when first needed (grpcio-tools compiles them in the process: about 70 ms, paid only by runs
that start a provider)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

PROTOCOL = Path(__file__).with_name("protocol")


@functools.cache
def _load(name: str) -> tuple[Any, Any]:
    import grpc

    sys.path.insert(0, str(PROTOCOL))
    try:
        messages, services = grpc.protos_and_services(f"{name}.proto")
    finally:
        sys.path.remove(str(PROTOCOL))
    return messages, services


def tfplugin(protocol: int) -> tuple[Any, Any]:
    """(messages, services) of the provider protocol a plugin agreed to speak."""
    return _load(f"tfplugin{protocol}")


def goplugin() -> tuple[Any, Any]:
    """(messages, services) of go-plugin's controller and stdio services."""
    return _load("goplugin")
