"""`opsgit agent --dev`."""

from __future__ import annotations

from pathlib import Path

from opsgit.commands.base import Arg, Command
from opsgit.errors import UserError


def agent(*, dev: bool, http_addr: str, data_dir: Path | None, token: str | None, node: str,
          dns_addr: str = "127.0.0.1:8600", domain: str = "consul", dns_only_passing: bool = False,
          enable_script_checks: bool = False, config_dirs: list[Path] | None = None) -> int:
    if not dev:
        raise UserError("opsgit runs only a development agent", hint="pass --dev; production points CONSUL_HTTP_ADDR "
                        "at a Consul cluster")
    from opsgit.agent.server import run_agent

    return run_agent(http_addr, data_dir, token, node, dns_addr, domain, dns_only_passing, enable_script_checks,
                     [Path(d) for d in config_dirs or []])


COMMANDS = (Command(
    "agent", "run the embedded Consul-API dev agent (`--dev`)", lambda a: agent(
        dev=a.dev, http_addr=a.http_addr, data_dir=a.data_dir, token=a.token, node=a.node, dns_addr=a.dns_addr,
        domain=a.domain, dns_only_passing=a.dns_only_passing, enable_script_checks=a.enable_script_checks,
        config_dirs=a.config_dir),
        task=False, args=(
        Arg("--dev", "development mode (the only mode opsgit has)", kind="bool"),
        Arg("--http-addr", "where to listen (default 127.0.0.1:8500; port 0 picks a free one)",
            default="127.0.0.1:8500", metavar="HOST:PORT"),
        Arg("--data-dir", "persist to DIR (SQLite); in memory without", kind="path", metavar="DIR"),
        Arg("--token", "require this ACL token on every request", metavar="TOKEN"),
        Arg("--node", "the agent's node name (default opsgit-dev)", default="opsgit-dev", metavar="NAME"),
        Arg("--dns-addr", "serve DNS here, UDP and TCP (default 127.0.0.1:8600; port 0 picks a free one; off: none)",
            default="127.0.0.1:8600", metavar="HOST:PORT"),
        Arg("--domain", "the DNS domain (default consul)", default="consul", metavar="DOMAIN"),
        Arg("--dns-only-passing", "leave instances with warning checks out of DNS answers too", kind="bool"),
        Arg("--enable-script-checks", "run script checks (Args or Script with an Interval), as Consul's flag of "
            "the same name; without it they are refused", kind="bool"),
        Arg("--config-dir", "load service and check definitions (Consul's JSON or HCL) from DIR, again on SIGHUP or "
            "PUT /v1/agent/reload; repeatable", kind="list", metavar="DIR"),
    )),)
