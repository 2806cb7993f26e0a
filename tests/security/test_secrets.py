"""Secrets never leave opsgit: masked by value in every output, statuses, comments and history."""

from __future__ import annotations

import base64
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsgit.secrets import MASK, Redactor
from tests.agent_process import AgentProcess, MotoProcess, start_agent, start_moto
from tests.conftest import apply_global, copy_example, run_opsgit, write_tree
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
    for prefix in ("", "#", "#!", "#!/"):  # each alignment a secret can have inside a longer base64 text
        blob = base64.b64encode(f"{prefix}export PASSWORD=hunter22-extended\n".encode()).decode()
        assert MASK in redactor.redact(blob), prefix
    harmless = base64.b64encode(b"export GREETING=hello-world\n").decode()
    assert redactor.redact(harmless) == harmless
    redactor.add_environment({"MY_API_TOKEN": "tok-123456", "HOME": "/root/home-dir"})
    assert redactor.redact("tok-123456 /root/home-dir") == f"{MASK} /root/home-dir"


@pytest.fixture(scope="module")
def services() -> Iterator[tuple[AgentProcess, MotoProcess]]:
    agent = start_agent("--token", CONSUL_TOKEN)
    moto = start_moto()
    yield agent, moto
    agent.stop()
    moto.stop()


# Non-ASCII, quotes, a backslash, YAML's `: ` and ` #`: it must render exactly and show nowhere.
HOSTILE_PASSWORD = "pg-\"é\\ü'-s3cret: #42"


def every_form(secret: str) -> set[str]:
    """The forms a secret can take in output, worked out here rather than by opsgit."""
    import base64
    import json
    import urllib.parse

    raw = secret.encode()
    forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], repr(secret)[1:-1],
             urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        forms |= {encode(raw).decode(), encode(raw).decode().rstrip("=")}
    return forms


def test_a_full_demo_run_shows_no_secret_in_any_output_file_or_request(
        tmp_path: Path, services: tuple[AgentProcess, MotoProcess]) -> None:
    """The secrets sweep: the demo with a hostile sensitive value and the usual tokens; every
    output, every file under build/ and .opsgit/ but the 0600 state, journal and saved plans,
    and every body sent to GitHub hold none of them in any form."""
    import json

    import consul

    agent, moto = services
    root = copy_example(tmp_path / "ops")
    env_yaml = root / "environments/dev/env.yaml"
    env_yaml.write_text(env_yaml.read_text().replace(f"postgres_password: {DB_PASSWORD}",
                                                     f"postgres_password: {json.dumps(HOSTILE_PASSWORD)}"))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "example")
    github = GitHub()
    threading.Thread(target=github.serve_forever, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CONSUL_", "OPSGIT_", "GITHUB_", "CI_"))}
    env.update({"AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
                "AWS_DEFAULT_REGION": "us-east-1", "CONSUL_HTTP_ADDR": agent.address,
                "CONSUL_HTTP_TOKEN": CONSUL_TOKEN, "GITHUB_TOKEN": TOKEN, "HC_ROLE": "binstore",
                "GITHUB_API_URL": f"http://127.0.0.1:{github.server_address[1]}", "GITHUB_REPOSITORY": "org/ops"})
    apply_global(root, env)  # dev reads its outputs
    outputs = []
    try:
        for args in (["validate"], ["render"], ["plan", "--env", "dev"], ["plan", "--env", "dev", "--json"],
                     ["plan", "--env", "dev", "--status"],
                     ["apply", "--env", "dev", "--auto-approve"], ["history", "--env", "dev", "--json"],
                     ["kv", "get", "--recurse", "opsgit/"],
                     ["image", "--env", "dev"], ["images", "--env", "dev"],
                     ["state", "show", "--env", "dev", "module.binstore.consul_keys.config"],
                     ["drift", "--env", "dev"], ["plan", "--env", "nope"]):
            result = run_opsgit(*args, cwd=root, env=env, timeout=300)
            outputs.append(result.stdout + result.stderr)
    finally:
        github.shutdown()
        github.server_close()
    assert "Apply complete! Resources: 18 added" in outputs[5], outputs[5]
    assert re.search(rf'\+ postgres_password += "{re.escape(MASK)}"', outputs[2]) and MASK in outputs[3], outputs[2]
    assert "Built binstore/dev" in outputs[8] and "unknown environment 'nope'" in outputs[12]
    assert any(s["context"] == "opsgit/plan: dev" for s in github.statuses), github.statuses
    # The value reached Consul exactly as written, quotes and backslash included (read with py-consul).
    host, port = agent.address.rsplit(":", 1)
    _, entry = consul.Consul(host=host, port=int(port), token=CONSUL_TOKEN).kv.get("service/binstore/postgres_password")
    assert entry is not None and entry["Value"].decode() == HOSTILE_PASSWORD
    private = {p for p in (root / ".opsgit" / "state").rglob("*") if p.is_file()}
    private |= set((root / "build" / "plans").glob("*.plan.json"))
    assert private and all(p.stat().st_mode & 0o077 == 0 for p in private)
    swept = [p for tree in (root / "build", root / ".opsgit") for p in tree.rglob("*") if p.is_file()
             and p not in private]
    assert any(p.name == "graph.json" for p in swept) and any(p.suffix == ".jsonl" for p in swept)
    texts = outputs + [json.dumps(s) for s in github.statuses] + list(github.comments.values())
    blobs = [p.read_bytes() for p in swept]
    for secret in (TOKEN, CONSUL_TOKEN, AWS_SECRET, HOSTILE_PASSWORD):
        for form in every_form(secret):
            assert not [text for text in texts if form in text], form
            assert not [p for p, blob in zip(swept, blobs, strict=True) if form.encode() in blob], form


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
