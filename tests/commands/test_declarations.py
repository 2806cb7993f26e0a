"""Every command is declared once: `opsgit` and `invoke` take the same flags, every option says
what it does, and a usage mistake is exit 1 with a hint (exit 2 means "changes present")."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
from pathlib import Path

import pytest

from opsgit.cli import build_parser
from opsgit.commands import all_commands
from opsgit.commands.base import leaves
from opsgit.tasks import ns
from tests.conftest import run_opsgit, venv_bin


def parser_of(path: tuple[str, ...]) -> argparse.ArgumentParser:
    found: argparse.ArgumentParser = build_parser()
    for name in path:
        action = next(a for a in found._actions if isinstance(a, argparse._SubParsersAction))
        found = action.choices[name]
    return found


def opsgit_flags(path: tuple[str, ...]) -> set[str]:
    parser = parser_of(path)
    names = {o for a in parser._actions for o in a.option_strings if o not in ("-h", "--help")}
    names |= {a.dest.replace("_", "-") for a in parser._actions if not a.option_strings and a.nargs != "A..."
              and not isinstance(a, argparse._SubParsersAction)}
    return {n.lstrip("-") for n in names}


def invoke_flags(path: tuple[str, ...]) -> set[str]:
    task = ns[".".join(path)]
    return {str(argument.names[0]) for argument in task.get_arguments()}


def test_every_task_takes_exactly_the_flags_of_its_command() -> None:
    tasks = leaves([command for command in all_commands() if command.task])
    assert {".".join(path) for path, _ in tasks} == set(ns.task_names)
    for path, _ in tasks:
        assert invoke_flags(path) == opsgit_flags(path), path


def test_every_option_and_positional_has_help() -> None:
    for path, command in leaves(all_commands()):
        assert command.help, path
        for arg in command.args:
            assert arg.help.strip(), (path, arg.name)
        parser = parser_of(path)
        for action in parser._actions:
            if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                assert action.help, (path, action.dest)


def test_invoke_plan_help_and_opsgit_plan_help_list_the_same_options(example: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(venv_bin('invoke')).parent}:{os.environ['PATH']}"}
    invoked = subprocess.run([venv_bin("invoke"), "plan", "--help"], cwd=example, capture_output=True, text=True,
                             env=env, check=False)
    direct = run_opsgit("plan", "--help", cwd=example)
    assert invoked.returncode == 0 and direct.returncode == 0, invoked.stderr + direct.stderr

    def options(text: str) -> set[str]:
        return set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", text)) - {"--help", "--core-opts", "--options"}

    assert options(invoked.stdout) == options(direct.stdout)
    assert {"--out", "--parallelism", "--detailed-exitcode", "--refresh", "--status"} <= options(invoked.stdout)


def test_invoke_passes_every_flag_through(example: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(venv_bin('invoke')).parent}:{os.environ['PATH']}"}
    result = subprocess.run([venv_bin("invoke"), "plan", "--env", "prdo", "--parallelism", "3", "--out", "x.json",
                             "--detailed-exitcode"], cwd=example, capture_output=True, text=True, env=env,
                            check=False)
    assert result.returncode == 1
    assert "error: unknown environment 'prdo' (did you mean 'prod'?)" in result.stderr
    missing = subprocess.run([venv_bin("invoke"), "plan"], cwd=example, capture_output=True, text=True, env=env,
                             check=False)
    assert missing.returncode == 1 and "plan needs --env ENV or --affected" in missing.stderr


@pytest.mark.parametrize(("args", "hint"), [
    (("plan", "--env", "dev", "--no-such-flag"), "see `opsgit plan --help`"),
    (("plan", "--env", "dev", "--paralelism", "3"), "did you mean --parallelism?"),
    (("plan", "-detailed-exitcode"), "opsgit spells it --detailed-exitcode, with two dashes"),
    (("plan", "--env", "dev", "-out=dev.tfplan"), "opsgit spells it --out dev.tfplan, with two dashes"),
    (("plan", "--env", "dev", "-target=module.web-east"), "opsgit spells it --target module.web-east"),
    (("plan", "--env", "dev", "-no-color"), "set NO_COLOR=1"),
    (("apply",), "apply needs --env ENV or --affected"),
    (("plan",), "plan needs --env ENV or --affected"),
    (("state", "rm", "--env", "dev"), "the following arguments are required: ADDRESS"),
    (("nosuch",), "invalid choice: 'nosuch'"),
    (("graph", "--envs", "--env", "dev"), "argument --env: not allowed with argument --envs"),
    (("exec", "--with-prefix", "--no-prefix", "--prefix", "a", "--", "true"),
     "argument --no-prefix: not allowed with argument --with-prefix"),
    (("apply", "--env", "dev", "--affected"), "apply takes --env ENV or --affected, not both"),
])
def test_usage_errors_exit_1_with_usage_and_a_hint(example: Path, args: tuple[str, ...], hint: str) -> None:
    result = run_opsgit(*args, cwd=example)
    assert result.returncode == 1, result
    assert result.stderr.startswith("usage: opsgit"), result.stderr
    assert hint in result.stderr
    assert "Traceback" not in result.stderr
    assert not (example / "build").exists()  # nothing was started


def test_help_builds_without_the_heavy_libraries() -> None:
    code = ("import sys, opsgit.cli; opsgit.cli.build_parser(); "
            "print(sorted(m for m in ('jinja2', 'boto3', 'botocore', 'requests', 'yaml', 'invoke', 'opsgit.render',"
            " 'opsgit.engine.plan', 'opsgit.consul.client') if m in sys.modules))")
    result = subprocess.run([venv_bin("python"), "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_invoke_takes_many_addresses_and_refuses_none(tmp_path: Path) -> None:
    from tests.conftest import REPO_ROOT, write_tree

    env = {**os.environ, "PATH": f"{Path(venv_bin('invoke')).parent}:{os.environ['PATH']}"}
    root = write_tree(tmp_path / "ops", {
        "environments/t/env.yaml": "modules:\n  m: {source: m}\n",
        "modules/m/module.yaml": "resources:\n  null_resource.n:\n    count: 3\n"
                                 "    triggers: {i: \"${count.index}\"}\n",
        "tasks.py": (REPO_ROOT / "tasks.py").read_text()})
    assert run_opsgit("apply", "--env", "t", "--auto-approve", cwd=root).returncode == 0
    removed = subprocess.run([venv_bin("invoke"), "state.rm", "--env", "t", "--addresses",
                              "module.m.null_resource.n[1]", "--addresses", "module.m.null_resource.n[2]"], cwd=root,
                             env=env, capture_output=True, text=True, check=False)
    assert removed.returncode == 0, removed.stderr
    assert run_opsgit("state", "list", "--env", "t", cwd=root).stdout.split() == ["module.m.null_resource.n[0]"]
    none = subprocess.run([venv_bin("invoke"), "state.rm", "--env", "t"], cwd=root, env=env, capture_output=True,
                          text=True, check=False)
    assert none.returncode == 1 and "state.rm needs addresses" in none.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("plan", "--env", "dev", "--parallelism", "abc"), "error: invalid number 'abc'"),
    (("apply", "--env", "dev", "--lock-timeout", "soon"), "error: invalid duration 'soon'"),
    (("plan", "--env", "dev", "--refresh", "maybe"), "error: invalid choice 'maybe'"),
])
def test_invoke_refuses_a_bad_value_as_opsgit_does(example: Path, args: tuple[str, ...], message: str) -> None:
    env = {**os.environ, "PATH": f"{Path(venv_bin('invoke')).parent}:{os.environ['PATH']}"}
    result = subprocess.run([venv_bin("invoke"), *args], cwd=example, capture_output=True, text=True, env=env,
                            check=False)
    assert result.returncode == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr and "a bug in opsgit" not in result.stderr
    assert run_opsgit(*args, cwd=example).returncode == 1  # and opsgit itself, the same
