"""An environment opens from its env.yaml alone: with a template error in a module dev uses, the
commands a user reaches for when things are broken still work (real processes on a copy of the
example, applied first against moto_server and the dev agent)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent_process import start_agent, start_moto
from tests.conftest import apply_global, copy_example, run_opsgit


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    moto, agent = start_moto(), start_agent()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CONSUL_", "OPSGIT_"))}
    env.update({"AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_DEFAULT_REGION": "us-east-1", "CONSUL_HTTP_ADDR": agent.address})
    ops = copy_example(tmp_path_factory.mktemp("broken") / "ops")
    apply_global(ops, env)  # dev reads its outputs
    done = opsgit(ops, env, "apply", "--env", "dev", "--auto-approve")
    assert done.returncode == 0, done.stderr
    module = ops / "modules/webapp/module.yaml"
    module.write_text(module.read_text().replace("{{ var.region }}", "{{ var.region | nosuchfilter }}", 1))
    broken = opsgit(ops, env, "plan", "--env", "dev")
    assert broken.returncode == 1 and "modules/webapp/module.yaml:" in broken.stderr  # it is broken
    yield ops, env
    agent.stop()
    moto.stop()


def opsgit(ops: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_opsgit(*args, cwd=ops, env=env, timeout=300)


@pytest.mark.parametrize("args", [("unlock", "--env", "dev", "--force"), ("locks",), ("state", "list", "--env", "dev"),
                                  ("history", "--env", "dev"), ("images", "--env", "dev"), ("history",)])
def test_commands_for_broken_times_work_while_a_module_is_broken(applied: tuple[Path, dict[str, str]],
                                                                 args: tuple[str, ...]) -> None:
    ops, env = applied
    result = opsgit(ops, env, *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_state_show_and_rm_work_while_a_module_is_broken(applied: tuple[Path, dict[str, str]]) -> None:
    ops, env = applied
    listed = opsgit(ops, env, "state", "list", "--env", "dev").stdout.split()
    assert "module.network.aws_security_group.allow_all" in listed and len(listed) == 18
    shown = opsgit(ops, env, "state", "show", "--env", "dev", "module.binstore.aws_launch_configuration.blue")
    assert shown.returncode == 0, shown.stderr
    assert "dev-only-pg-password" not in shown.stdout  # the provider's sensitive fields are masked still
    history = opsgit(ops, env, "history", "--env", "dev")
    assert " apply " in history.stdout and "Apply complete! Resources: 18 added" in history.stdout
    address = "module.web-east.aws_instance.web[0]"
    state = json.loads((ops / ".opsgit/state/dev.json").read_text())
    instance = next(r["id"] for r in state["resources"] if r["address"] == address)
    removed = opsgit(ops, env, "state", "rm", "--env", "dev", address)
    assert removed.returncode == 0, removed.stderr
    state = json.loads((ops / ".opsgit/state/dev.json").read_text())
    assert address not in {r["address"] for r in state["resources"]}
    imported = opsgit(ops, env, "import", "--env", "dev", address, instance)
    assert imported.returncode == 0, imported.stderr
    assert "does not render" in imported.stderr and "importing module.web-east.aws_instance.web[0] by its address" \
        in imported.stderr
    state = json.loads((ops / ".opsgit/state/dev.json").read_text())
    adopted = next(r for r in state["resources"] if r["address"] == address)
    assert adopted["id"] == instance and adopted["type"] == "aws_instance"


@pytest.mark.parametrize("setting", ["ttl: soon", "lock_delay: 3 parsecs"])
def test_a_bad_lock_setting_names_env_yaml_and_its_line(tmp_path: Path, setting: str) -> None:
    root = copy_example(tmp_path / "ops")
    env_yaml = root / "environments/dev/env.yaml"
    text = env_yaml.read_text()
    env_yaml.write_text(text.replace("lock:\n  backend: local\n", f"lock:\n  backend: consul\n  {setting}\n"))
    line = text.splitlines().index("lock:") + 1
    result = run_opsgit("unlock", "--env", "dev", "--force", cwd=root, extra={"CONSUL_HTTP_ADDR": "127.0.0.1:9"})
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: environments/dev/env.yaml:{line}: lock: {setting.split(':')[0]}:"), \
        result.stderr
