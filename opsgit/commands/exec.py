"""`opsgit exec --prefix P [--service S] [options] -- CMD ARGS` (envconsul style)."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Sequence

from opsgit.commands.base import Arg, Command
from opsgit.errors import UserError


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
    from opsgit.consul.client import Consul
    from opsgit.runtime.environment import EnvironmentOptions, NamingOptions
    from opsgit.runtime.exec import ExecOptions, ExecRunner
    from opsgit.runtime.template_config import parse_wait

    options = ExecOptions(
        prefixes=tuple(prefixes), services=tuple(services),
        environment=EnvironmentOptions(NamingOptions(sanitize=sanitize, upcase=upcase, with_prefix=with_prefix),
                                       pristine=pristine, allow=tuple(allow), deny=tuple(deny)),
        once=once, kill_signal=parse_signal(kill_signal), kill_timeout=kill_timeout,
        reload_signal=parse_signal(reload_signal) if reload_signal else None, splay=splay, wait=parse_wait(wait))
    return ExecRunner(Consul(), options, command).run()


def _run(args: argparse.Namespace) -> int:
    return exec_command(args.command_args, prefixes=args.prefix, services=args.service, sanitize=args.sanitize,
                        upcase=args.upcase, with_prefix=args.with_prefix, pristine=args.pristine, allow=args.allow,
                        deny=args.deny, once=args.once, kill_signal=args.kill_signal, kill_timeout=args.kill_timeout,
                        reload_signal=args.reload_signal, splay=args.splay, wait=args.wait)


COMMANDS = (Command(
    "exec", "run a command with Consul KV as its environment (envconsul style)", _run, task=False,
    description="Each key under a prefix becomes a variable named by the key below the prefix (db/host); later "
                "prefixes win. The child restarts when the computed environment changes.", args=(
        Arg("--prefix", "KV prefix to read; repeatable, later wins", kind="list", metavar="PREFIX"),
        Arg("--service", "a service's first healthy instance as NAME_address, NAME_port, ...; repeatable",
            kind="list", metavar="NAME"),
        Arg("--sanitize", "turn characters outside [A-Za-z0-9_] into _", kind="bool"),
        Arg("--upcase", "upper-case the variable names", kind="bool"),
        Arg("--with-prefix", "put the prefix (as prefix_) in front of each name", kind="bool", group="naming"),
        Arg("--no-prefix", "names without the prefix (the default)", kind="false", dest="with_prefix", default=False,
            group="naming"),
        Arg("--pristine", "do not pass opsgit's own environment on", kind="bool"),
        Arg("--allow", "only variables matching; repeatable", kind="list", metavar="GLOB"),
        Arg("--deny", "never variables matching; repeatable", kind="list", metavar="GLOB"),
        Arg("--once", "read once, run the command, do not watch", kind="bool"),
        Arg("--kill-signal", "signal that stops the child (default SIGTERM)", default="SIGTERM", metavar="SIGNAL"),
        Arg("--kill-timeout", "then SIGKILL after this long (default 30s)", kind="duration", default=30.0,
            metavar="DURATION"),
        Arg("--reload-signal", "send this signal on a change instead of restarting", metavar="SIGNAL"),
        Arg("--splay", "random delay up to this before a restart", kind="duration", default=0.0, metavar="DURATION"),
        Arg("--wait", "quiescence before restarting", metavar="MIN[:MAX]"),
        Arg("command_args", "the command and its arguments", kind="remainder", metavar="-- CMD"),
    )),)
