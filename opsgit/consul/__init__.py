"""A Consul client on `requests`, with a pluggable transport, and the helpers built on it."""

from opsgit.consul.client import Consul, KVPair
from opsgit.consul.transport import MockTransport, Request, RequestsTransport, Response, Transport

__all__ = ["Consul", "KVPair", "MockTransport", "Request", "RequestsTransport", "Response", "Transport"]
