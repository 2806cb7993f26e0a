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

    plan = commands.add_parser("plan", help="refresh, diff and show what apply would do; saves the plan")
    plan.add_argument("--env", help="the environment (or --affected)")
    plan.add_argument("--affected", action="store_true", help="plan every environment the git change affects")
    plan.add_argument("--base", help="with --affected: the ref to compare with (default: default_base)")
    plan.add_argument("--status", action="store_true", help="with --affected: post commit statuses (GitHub/GitLab)")
    plan.add_argument("--out", type=Path, help="where to save the plan (default build/plans/ENV.plan.json)")
    plan.add_argument("--refresh-only", action="store_true", help="only bring the state up to date with reality")
    plan.add_argument("--target", action="append", default=[], metavar="ADDR", help="only ADDR and its dependencies")
    plan.add_argument("--destroy", action="store_true", help="plan to destroy everything")
    plan.add_argument("--refresh", default="true", choices=["true", "false"], help="read resources first (default)")
    plan.add_argument("--detailed-exitcode", action="store_true", help="exit 2 when there are changes")
    plan.add_argument("--parallelism", type=int, default=10)
    plan.add_argument("--json", action="store_true", help="print the plan as JSON (terraform show -json shape)")

    apply_ = commands.add_parser("apply", help="apply a saved plan, or plan and apply after approval")
    apply_.add_argument("--env", required=True)
    apply_.add_argument("plan_file", nargs="?", type=Path, metavar="PLANFILE")
    apply_.add_argument("--auto-approve", action="store_true")
    apply_.add_argument("--parallelism", type=int, default=10)
    apply_.add_argument("--lock-timeout", type=_duration_arg, default=0.0, help="wait this long for the run lock")

    drift = commands.add_parser("drift", help="list what changed outside opsgit (exit 2 when something did)")
    drift.add_argument("--env", required=True)
    drift.add_argument("--json", action="store_true")

    state = commands.add_parser("state", help="inspect and edit the state: list, show, rm, mv")
    state_commands = state.add_subparsers(dest="state_command", metavar="SUBCOMMAND", required=True)
    for verb, text in (("list", "list managed resources"), ("show", "show one resource's attributes"),
                       ("rm", "forget resources (they keep existing)"), ("mv", "rename a resource in the state")):
        sub = state_commands.add_parser(verb, help=text)
        sub.add_argument("--env", required=True)
        if verb == "show":
            sub.add_argument("address")
        elif verb == "rm":
            sub.add_argument("addresses", nargs="+", metavar="ADDRESS")
        elif verb == "mv":
            sub.add_argument("source")
            sub.add_argument("destination")
    import_resource = commands.add_parser("import", help="adopt an existing object into the state")
    import_resource.add_argument("--env", required=True)
    import_resource.add_argument("address")
    import_resource.add_argument("id")

    affected = commands.add_parser("affected", help="the environments and images a git change affects, exactly")
    affected.add_argument("--base", help="compare with this ref's merge base (default: [tool.opsgit] default_base)")
    affected.add_argument("--head", default="HEAD")
    affected.add_argument("--json", action="store_true", help="JSON with a CI matrix (one job per environment)")

    unlock = commands.add_parser("unlock", help="show who holds an environment's run lock, and remove it")
    unlock.add_argument("--env", required=True)
    unlock.add_argument("--force", action="store_true", help="remove without asking")
    commands.add_parser("locks", help="list every environment's run lock and its holder")
    history = commands.add_parser("history", help="the plans and applies that ran")
    history.add_argument("--env")
    history.add_argument("--json", action="store_true")

    build_image = commands.add_parser("image",
                                      help="build a role's image with Packer, record it, optionally promote it")
    build_image.add_argument("--role", help="the role (default: $HC_ROLE)")
    build_image.add_argument("--env", help="the environment whose images: settings apply (default: dev)")
    build_image.add_argument("--only", metavar="BUILDER", help="the Packer builder (default: the env's images.builder)")
    build_image.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                             help="a Packer variable the template declares; repeatable")
    build_image.add_argument("--promote", action="store_true",
                             help="write the image id into environments/<env>/images.yaml")
    build_image.add_argument("--dry-run", action="store_true", help="render and show the packer command only")
    list_images = commands.add_parser("images", help="the images built, per environment")
    list_images.add_argument("--env")
    list_images.add_argument("--json", action="store_true")
    verify = commands.add_parser("verify", help="run a role's testinfra tests (roles/<role>/tests/) against hosts")
    verify.add_argument("--role", help="the role (default: $HC_ROLE)")
    verify.add_argument("--hosts", default="local://",
                        help="testinfra hosts: local://, ssh://user@host, docker://container (default local://)")
    verify.add_argument("--env", help="with local://, test the image root of this environment's last local build "
                                      "(default: dev)")
    verify.add_argument("--root", help="the directory the image's files are under (default: the last local build's "
                                       "root for local://, / otherwise)")

    scaffold = commands.add_parser("init", help="create a new ops monorepo that renders and plans at once")
    scaffold.add_argument("target", metavar="DIR", help="a new or empty directory")
    scaffold.add_argument("--name", help="the organisation's name (default: the directory's)")

    template = commands.add_parser("template", help="render config files from Consul (consul-template style)")
    template.add_argument("--template", action="append", default=[], metavar="SRC:DEST[:COMMAND]")
    template.add_argument("--config", action="append", default=[], metavar="FILE",
                          help="a YAML list of templates (source, destination, command, command_timeout, perms, "
                               "backup, wait, left_delimiter, right_delimiter, in_place); repeatable")
    template.add_argument("--role", help="the role's templates and destinations from its role.yaml")
    template.add_argument("--destination-root", metavar="DIR",
                          help="with --role: write the destinations under DIR (an image or container root)")
    template.add_argument("--once", action="store_true", help="render once and exit")
    template.add_argument("--dry", action="store_true", help="print instead of writing")
    template.add_argument("--wait", metavar="MIN[:MAX]", help="quiescence before re-rendering")
    template.add_argument("--missing-key-timeout", type=_duration_arg, default=None,
                          help="fail, naming the key, when key() waits longer than this")
    template.add_argument("--in-place", action="store_true",
                          help="rewrite destinations in place (keeps the inode, for bind-mounted files)")
    template.add_argument("--give-up-after", type=_duration_arg, default=None, metavar="DURATION",
                          help="exit 1 when Consul has been unreachable this long (default: keep retrying)")

    run = commands.add_parser("exec", help="run a command with Consul KV as its environment (envconsul style)",
                              description="Each key under a prefix becomes a variable named by the key below the "
                                          "prefix (db/host); later prefixes win. The child restarts when the "
                                          "computed environment changes.")
    run.add_argument("--prefix", action="append", default=[], help="KV prefix to read; repeatable, later wins")
    run.add_argument("--service", action="append", default=[],
                     help="a service's first healthy instance as NAME_address, NAME_port, …; repeatable")
    run.add_argument("--sanitize", action="store_true", help="turn characters outside [A-Za-z0-9_] into _")
    run.add_argument("--upcase", action="store_true", help="upper-case the variable names")
    naming = run.add_mutually_exclusive_group()
    naming.add_argument("--with-prefix", dest="with_prefix", action="store_true",
                        help="put the prefix (as prefix_) in front of each name")
    naming.add_argument("--no-prefix", dest="with_prefix", action="store_false", help="names without the prefix "
                        "(the default)")
    run.add_argument("--pristine", action="store_true", help="do not pass opsgit's own environment on")
    run.add_argument("--allow", action="append", default=[], metavar="GLOB", help="only variables matching")
    run.add_argument("--deny", action="append", default=[], metavar="GLOB", help="never variables matching")
    run.add_argument("--once", action="store_true", help="read once, run the command, do not watch")
    run.add_argument("--kill-signal", default="SIGTERM", help="signal that stops the child (default SIGTERM)")
    run.add_argument("--kill-timeout", type=_duration_arg, default=30.0,
                     help="then SIGKILL after this long (default 30s)")
    run.add_argument("--reload-signal", help="send this signal on a change instead of restarting")
    run.add_argument("--splay", type=_duration_arg, default=0.0, help="random delay up to this before a restart")
    run.add_argument("--wait", metavar="MIN[:MAX]", help="quiescence before restarting")
    run.add_argument("command_args", nargs=argparse.REMAINDER, metavar="-- CMD", help="the command and its arguments")

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


def _dispatch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Callable[[], int]:
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
    if args.command == "plan" and args.affected:
        from opsgit.commands.plan_affected import plan_affected
        return lambda: plan_affected(args.base, status=args.status, detailed_exitcode=args.detailed_exitcode)
    if args.command == "plan" and not args.env:
        parser.error("plan needs --env ENV or --affected")
    if args.command == "plan":
        from opsgit.commands.plan import plan
        return lambda: plan(args.env, out=args.out, refresh_only=args.refresh_only, targets=args.target,
                            destroy=args.destroy, detailed_exitcode=args.detailed_exitcode, as_json=args.json,
                            parallelism=args.parallelism, refresh=args.refresh == "true", status=args.status)
    if args.command == "apply":
        from opsgit.commands.apply import apply
        return lambda: apply(args.env, args.plan_file, auto_approve=args.auto_approve, parallelism=args.parallelism,
                             lock_timeout=args.lock_timeout)
    if args.command == "drift":
        from opsgit.commands.drift import drift
        return lambda: drift(args.env, as_json=args.json)
    if args.command == "state":
        from opsgit.commands import state
        if args.state_command == "list":
            return lambda: state.state_list(args.env)
        if args.state_command == "show":
            return lambda: state.state_show(args.env, args.address)
        if args.state_command == "rm":
            return lambda: state.state_rm(args.env, args.addresses)
        return lambda: state.state_mv(args.env, args.source, args.destination)
    if args.command == "import":
        from opsgit.commands.state import import_resource
        return lambda: import_resource(args.env, args.address, args.id)
    if args.command == "affected":
        from opsgit.commands.affected import affected
        return lambda: affected(args.base, args.head, as_json=args.json)
    if args.command == "unlock":
        from opsgit.commands.unlock import unlock
        return lambda: unlock(args.env, force=args.force)
    if args.command == "history":
        from opsgit.commands.history import history
        return lambda: history(args.env, as_json=args.json)
    if args.command == "locks":
        from opsgit.commands.unlock import locks
        return locks
    if args.command == "image":
        from opsgit.commands.image import image
        return lambda: image(args.role, args.env, only=args.only, variables=args.var, promote=args.promote,
                             dry_run=args.dry_run)
    if args.command == "images":
        from opsgit.commands.images import images
        return lambda: images(args.env, as_json=args.json)
    if args.command == "verify":
        from opsgit.commands.verify import verify
        return lambda: verify(args.role, args.hosts, env=args.env, root=args.root)
    if args.command == "init":
        from opsgit.commands.init import init
        return lambda: init(args.target, args.name)
    if args.command == "template":
        from opsgit.commands.template import template
        return lambda: template(args.template, configs=args.config, role=args.role, once=args.once, dry=args.dry,
                                wait=args.wait, missing_key_timeout=args.missing_key_timeout,
                                in_place=args.in_place, give_up_after=args.give_up_after,
                                destination_root=args.destination_root)
    if args.command == "exec":
        from opsgit.commands.exec import exec_command
        return lambda: exec_command(args.command_args, prefixes=args.prefix, services=args.service,
                                    sanitize=args.sanitize, upcase=args.upcase, with_prefix=args.with_prefix,
                                    pristine=args.pristine, allow=args.allow, deny=args.deny, once=args.once,
                                    kill_signal=args.kill_signal, kill_timeout=args.kill_timeout,
                                    reload_signal=args.reload_signal, splay=args.splay, wait=args.wait)
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
    return run_guarded(lambda: _dispatch(args, parser)())
