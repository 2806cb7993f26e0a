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

    kv = commands.add_parser("kv", help="read and write Consul KV, as `consul kv` does")
    kv_commands = kv.add_subparsers(dest="kv_command", metavar="SUBCOMMAND", required=True)
    get = kv_commands.add_parser("get", help="print a value (or a tree with --recurse)")
    get.add_argument("--recurse", action="store_true", help="every key under the prefix, as key:value")
    get.add_argument("--keys", action="store_true", help="list keys under the prefix")
    get.add_argument("--separator", help="with --keys, roll keys up to this separator (default /)")
    get.add_argument("--detailed", action="store_true", help="show indexes, flags and session too")
    get.add_argument("key", nargs="?", default="")
    put = kv_commands.add_parser("put", help="write a value: VALUE, - for stdin, or @file")
    put.add_argument("--flags", type=int)
    put.add_argument("--cas", action="store_true", help="write only if --modify-index still matches")
    put.add_argument("--modify-index", type=int)
    put.add_argument("--acquire", action="store_true", help="acquire the lock for --session")
    put.add_argument("--release", action="store_true", help="release the lock of --session")
    put.add_argument("--session")
    put.add_argument("key")
    put.add_argument("value", nargs="?")
    delete = kv_commands.add_parser("delete", help="delete a key (or a prefix with --recurse)")
    delete.add_argument("--recurse", action="store_true")
    delete.add_argument("--cas", action="store_true")
    delete.add_argument("--modify-index", type=int)
    delete.add_argument("key")
    export = kv_commands.add_parser("export", help="print a prefix as JSON (base64 values)")
    export.add_argument("prefix", nargs="?", default="")
    import_ = kv_commands.add_parser("import", help="write the JSON of `export` (DATA, - or @file)")
    import_.add_argument("--prefix", default="", help="only keys under this prefix")
    import_.add_argument("data", nargs="?")

    lock = commands.add_parser("lock", help="run a command while holding a Consul lock (`consul lock` layout)",
                               description="Run CMD while holding the lock PREFIX/.lock, or with -n N one of N "
                               "semaphore slots. The child gets CONSUL_LOCK_HELD=true; if the lock is lost its "
                               "process group is stopped. opsgit exits with the child's exit code.")
    lock.add_argument("-n", dest="limit", type=int, default=1, help="how many may hold it at once (default 1)")
    lock.add_argument("--timeout", type=_duration_arg, default=None,
                      help="give up after this long (default: wait for ever), e.g. 30s")
    lock.add_argument("--name", help="the session's name")
    lock.add_argument("--session-ttl", type=_duration_arg, default=15.0, help="session TTL (default 15s)")
    lock.add_argument("--lock-delay", type=_duration_arg, default=None,
                      help="Consul lock-delay after a holder dies (default: Consul's 15s)")
    lock.add_argument("prefix", help="the KV prefix of the lock")
    lock.add_argument("command_args", nargs=argparse.REMAINDER, metavar="-- CMD", help="the command and its arguments")
    return parser


def _duration_arg(text: str) -> float:
    from opsgit.consul.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (use 30s, 500ms, 2m)") from None


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
    if args.command == "kv":
        from opsgit.commands import kv
        if args.kv_command == "get":
            return lambda: kv.kv_get(args.key, recurse=args.recurse, keys=args.keys, separator=args.separator,
                                     detailed=args.detailed)
        if args.kv_command == "put":
            return lambda: kv.kv_put(args.key, args.value, flags=args.flags, cas=args.cas,
                                     modify_index=args.modify_index, acquire=args.acquire, release=args.release,
                                     session=args.session)
        if args.kv_command == "delete":
            return lambda: kv.kv_delete(args.key, recurse=args.recurse, cas=args.cas, modify_index=args.modify_index)
        if args.kv_command == "export":
            return lambda: kv.kv_export(args.prefix)
        return lambda: kv.kv_import(args.data, prefix=args.prefix)
    if args.command == "lock":
        from opsgit.commands.lock import lock
        command = args.command_args
        return lambda: lock(args.prefix, command, limit=args.limit, timeout=args.timeout, name=args.name,
                            ttl=args.session_ttl, lock_delay=args.lock_delay)
    raise AssertionError(args.command)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if getattr(args, "command_args", None) and args.command_args[0] == "--":
        args.command_args = args.command_args[1:]
    if args.command is None:
        parser.print_help()
        return 0
    if args.directory:
        try:
            os.chdir(Path(args.directory))
        except OSError as error:
            print(f"error: cannot enter {args.directory}: {error.strerror}", file=sys.stderr)
            return 1
    return run_guarded(lambda: _dispatch(args)())
