"""`opsgit agent --dev`."""

from __future__ import annotations

from pathlib import Path

from opsgit.errors import UserError


def agent(*, dev: bool, http_addr: str, data_dir: Path | None, token: str | None, node: str) -> int:
    if not dev:
        raise UserError("opsgit runs only a development agent", hint="pass --dev; production points CONSUL_HTTP_ADDR "
                        "at a Consul cluster")
    from opsgit.agent.server import run_agent

    return run_agent(http_addr, data_dir, token, node)
