"""The provider tests run against the engine tests' moto_server and dev agent."""

from tests.engine.conftest import consul_agent, dev_env, fresh_moto, moto, ops

__all__ = ["consul_agent", "dev_env", "fresh_moto", "moto", "ops"]
