"""`opsgit`: parse flags, call one command function. Heavy modules load only when used."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from opsgit import __version__
from opsgit.error_handler import run_guarded


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opsgit", description="GitOps for operations monorepos: render, plan, apply and report.")
    parser.add_argument("--version", action="version", version=f"opsgit {__version__}")
    parser.add_argument("-C", dest="directory", metavar="DIR", help="run as if started in DIR")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    render = commands.add_parser("render", help="render image templates, environment graphs and role "
                                 "bundles into the build directory")
    render.add_argument("--env", action="append", default=[], metavar="ENV",
                        help="only this environment (and the roles it deploys); repeatable")
    render.add_argument("--role", action="append", default=[], metavar="ROLE",
                        help="only this role's image template and bundle; repeatable")
    render.add_argument("--json", action="store_true", help="print the artefacts as JSON")

    validate = commands.add_parser("validate", help="check the whole repository renders, and run "
                                   "`packer validate` on every image template")
    validate.add_argument("--no-packer", action="store_true", help="skip `packer validate`")

    agent = commands.add_parser("agent", help="run the embedded Consul-API dev agent (`--dev`)")
    agent.add_argument("--dev", action="store_true", help="development mode (the only mode opsgit has)")
    agent.add_argument("--http-addr", default="127.0.0.1:8500", metavar="HOST:PORT",
                       help="where to listen (default 127.0.0.1:8500; port 0 picks a free one)")
    agent.add_argument("--data-dir", type=Path, metavar="DIR", help="persist to DIR (SQLite); in memory without")
    agent.add_argument("--token", help="require this ACL token on every request")
    agent.add_argument("--node", default="opsgit-dev", help="the agent's node name (default opsgit-dev)")
    return parser


def _dispatch(args: argparse.Namespace) -> Callable[[], int]:
    if args.command == "render":
        from opsgit.commands.render import render
        return lambda: render(envs=args.env, roles=args.role, as_json=args.json)
    if args.command == "validate":
        from opsgit.commands.validate import validate
        return lambda: validate(packer=not args.no_packer)
    if args.command == "agent":
        from opsgit.commands.agent import agent
        return lambda: agent(dev=args.dev, http_addr=args.http_addr, data_dir=args.data_dir, token=args.token,
                             node=args.node)
    raise AssertionError(args.command)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.directory:
        try:
            os.chdir(Path(args.directory))
        except OSError as error:
            print(f"error: cannot enter {args.directory}: {error.strerror}", file=sys.stderr)
            return 1
    return run_guarded(_dispatch(args))
