"""This monorepo's invoke tasks: `invoke --list`."""

from opsgit.tasks import ns

__all__ = ["ns"]
