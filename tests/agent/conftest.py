"""The agent tests share the session agent and client of the Consul tests."""

from tests.consul.conftest import agent, consul

__all__ = ["agent", "consul"]
