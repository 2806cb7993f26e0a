"""Command tests that talk to Consul share the session agent of the Consul tests."""

from tests.consul.conftest import agent, consul

__all__ = ["agent", "consul"]
