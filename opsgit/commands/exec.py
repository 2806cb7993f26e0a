"""`opsgit exec --prefix P [--service S] [options] -- CMD ARGS` (envconsul style)."""

from __future__ import annotations

import signal
from collections.abc import Sequence

from opsgit.consul.client import Consul
from opsgit.errors import UserError
from opsgit.runtime.environment import EnvironmentOptions, NamingOptions
from opsgit.runtime.exec import ExecOptions, ExecRunner
from opsgit.runtime.template_config import parse_wait


def parse_signal(text: str) -> int:
    """`SIGTERM`, `TERM`, `term` or `15`."""
    name = text.strip().upper()
    try:
        if name.isdigit():
            return signal.Signals(int(name)).value
        return signal.Signals[name if name.startswith("SIG") else f"SIG{name}"].value
    except (ValueError, KeyError):
        pass
    raise UserError(f"unknown signal {text!r}", hint="use a name such as SIGTERM, SIGHUP or SIGINT")


def exec_command(command: Sequence[str], *, prefixes: Sequence[str], services: Sequence[str] = (),
                 sanitize: bool = False, upcase: bool = False, with_prefix: bool = False, pristine: bool = False,
                 allow: Sequence[str] = (), deny: Sequence[str] = (), once: bool = False,
                 kill_signal: str = "SIGTERM", kill_timeout: float = 30.0, reload_signal: str | None = None,
                 splay: float = 0.0, wait: str | None = None) -> int:
    if not command:
        raise UserError("no command given", hint="put the command after --, e.g. opsgit exec --prefix "
                                                  "service/binstore -- binstore")
    if not prefixes and not services:
        raise UserError("nothing to read from Consul", hint="give --prefix PATH (repeatable) or --service NAME")
    options = ExecOptions(
        prefixes=tuple(prefixes), services=tuple(services),
        environment=EnvironmentOptions(NamingOptions(sanitize=sanitize, upcase=upcase, with_prefix=with_prefix),
                                       pristine=pristine, allow=tuple(allow), deny=tuple(deny)),
        once=once, kill_signal=parse_signal(kill_signal), kill_timeout=kill_timeout,
        reload_signal=parse_signal(reload_signal) if reload_signal else None, splay=splay, wait=parse_wait(wait))
    return ExecRunner(Consul(), options, command).run()
