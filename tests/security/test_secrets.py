"""Secrets never leave opsgit: masked by value in every output, statuses, comments and history."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsgit.secrets import MASK, Redactor
from tests.agent_process import AgentProcess, MotoProcess, start_agent, start_moto
from tests.conftest import copy_example, run_opsgit, write_tree
from tests.gitops.test_affected import git
from tests.gitops.test_statuses import TOKEN, GitHub

CONSUL_TOKEN = "c0nsul-acl-token-8f14e45f"
AWS_SECRET = "aws-secret-key-6512bd43d9caa6e0"
DB_PASSWORD = "dev-only-pg-password"  # environments/dev/env.yaml marks it sensitive


def test_values_are_masked_longest_first_and_short_ones_left_alone() -> None:
    redactor = Redactor()
    redactor.add("hunter22")
    redactor.add({"nested": ["hunter22-extended"], "short": "dev"})
    assert redactor.redact("a hunter22-extended b hunter22 c dev") == f"a {MASK} b {MASK} c dev"
    assert redactor.redact_data({"k": ["x hunter22"], "n": 3}) == {"k": [f"x {MASK}"], "n": 3}
    redactor.add_environment({"MY_API_TOKEN": "tok-123456", "HOME": "/root/home-dir"})
    assert redactor.redact("tok-123456 /root/home-dir") == f"{MASK} /root/home-dir"


@pytest.fixture(scope="module")
def services() -> Iterator[tuple[AgentProcess, MotoProcess]]:
    agent = start_agent("--token", CONSUL_TOKEN)
    moto = start_moto()
    yield agent, moto
    agent.stop()
    moto.stop()


def test_a_full_demo_run_never_shows_a_token_or_the_sensitive_variable(
        tmp_path: Path, services: tuple[AgentProcess, MotoProcess]) -> None:
    agent, moto = services
    root = copy_example(tmp_path / "ops")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "example")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CONSUL_", "OPSGIT_", "GITHUB_"))}
    env.update({"AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
                "AWS_DEFAULT_REGION": "us-east-1", "CONSUL_HTTP_ADDR": agent.address,
                "CONSUL_HTTP_TOKEN": CONSUL_TOKEN, "GITHUB_TOKEN": TOKEN, "HC_ROLE": "binstore"})
    outputs = []
    for args in (["validate"], ["render"], ["plan", "--env", "dev"], ["plan", "--env", "dev", "--json"],
                 ["apply", "--env", "dev", "--auto-approve"], ["history", "--env", "dev", "--json"],
                 ["kv", "get", "--recurse", "opsgit/"], ["image", "--env", "dev"], ["images", "--env", "dev"],
                 ["state", "show", "--env", "dev", "module.binstore.consul_keys.config"],
                 ["plan", "--env", "nope"]):
        result = run_opsgit(*args, cwd=root, env=env, timeout=300)
        outputs.append(result.stdout + result.stderr)
    assert "Apply complete! Resources: 18 added" in outputs[4], outputs[4]
    assert f'"postgres_password": "{MASK}"' in outputs[2] and MASK in outputs[3]
    assert "Built binstore/dev" in outputs[7] and "unknown environment 'nope'" in outputs[10]
    recorded = [p.read_text(errors="replace") for p in (root / ".opsgit").rglob("*.jsonl")]
    assert recorded, "history was written"
    for text in outputs + recorded:
        for secret in (TOKEN, CONSUL_TOKEN, AWS_SECRET, DB_PASSWORD):
            assert secret not in text
    state_files = [p for p in (root / ".opsgit" / "state").iterdir() if p.is_file()]
    assert state_files and all(p.stat().st_mode & 0o077 == 0 for p in state_files)


def test_statuses_comments_and_errors_mask_a_sensitive_variable(tmp_path: Path) -> None:
    secret = "pr-s3cret-password-42"
    module = ("variables:\n  password: {type: number, sensitive: true}\n---\nresources:\n"
              "  null_resource.db:\n    triggers: {password: \"{{ var.password }}\"}\n")
    env = (f"sensitive: [password]\nvariables:\n  password: {secret}\n"
           "modules:\n  db:\n    source: db\n    inputs: {password: \"{{ var.password }}\"}\n")
    root = write_tree(tmp_path / "ops", {"environments/a/env.yaml": env.replace("number", "string"),
                                         "modules/db/module.yaml": module.replace("number", "string"),
                                         "pyproject.toml": "[tool.opsgit]\n"})
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    git(root, "checkout", "-q", "-b", "pr")
    (root / "environments/b").mkdir()
    (root / "environments/b/env.yaml").write_text(env)  # plans fine
    (root / "environments/c").mkdir()
    (root / "environments/c/env.yaml").write_text(env)
    (root / "modules/db2").mkdir()
    (root / "modules/db2/module.yaml").write_text(module)  # a number: the error quotes the value
    (root / "environments/c/env.yaml").write_text(env.replace("source: db", "source: db2"))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "two more")
    server = GitHub()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB_"))}
        environment.update({"GITHUB_API_URL": f"http://127.0.0.1:{server.server_address[1]}",
                            "GITHUB_REPOSITORY": "org/ops", "GITHUB_REF": "refs/pull/7/merge", "GITHUB_TOKEN": TOKEN})
        result = run_opsgit("plan", "--affected", "--base", "main", "--status", cwd=root, env=environment, timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 1  # c fails: its module wants a number
    failure = next(s for s in server.statuses if s["context"] == "opsgit/plan: c" and s["state"] == "failure")
    assert "must be a number" in failure["description"] and MASK in failure["description"]
    sent = [s["description"] for s in server.statuses] + list(server.comments.values())
    history = [p.read_text() for p in (root / ".opsgit").rglob("*.jsonl")]
    for text in [result.stdout, result.stderr, *sent, *history]:
        assert secret not in text and TOKEN not in text


def test_a_non_ascii_secret_is_masked_in_every_encoding_it_travels_in(tmp_path: Path) -> None:
    import base64
    import json
    import urllib.parse

    from tests.conftest import run_opsgit, write_tree

    secret = "pg-é-ü-s3cret-42"
    module = ("variables:\n  password: {type: string, sensitive: true}\n---\nresources:\n"
              "  null_resource.db:\n    triggers: {password: \"{{ var.password }}\"}\n")
    env = (f"sensitive: [password]\nvariables:\n  password: {secret}\n"
           "modules:\n  db:\n    source: db\n    inputs:\n      password: \"{{ var.password }}\"\n")
    root = write_tree(tmp_path / "ops", {"environments/t/env.yaml": env, "modules/db/module.yaml": module})
    outputs = [run_opsgit(*args, cwd=root) for args in (
        ["plan", "--env", "t", "--json"], ["apply", "--env", "t", "--auto-approve"],
        ["state", "show", "--env", "t", "module.db.null_resource.db"], ["history", "--env", "t", "--json"],
        ["drift", "--env", "t", "--json"])]
    assert outputs[1].returncode == 0, outputs[1].stderr
    forms = {secret, json.dumps(secret)[1:-1], repr(secret)[1:-1], urllib.parse.quote(secret),
             base64.b64encode(secret.encode()).decode()}
    texts = [o.stdout + o.stderr for o in outputs]
    texts += [p.read_text() for p in (root / ".opsgit").rglob("*.jsonl")]
    for text in texts:
        for form in forms:
            assert form not in text, form
