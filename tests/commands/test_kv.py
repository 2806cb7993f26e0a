"""`opsgit kv` against the dev agent, as real processes."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

from tests.agent_process import AgentProcess
from tests.conftest import run_opsgit


def kv(agent: AgentProcess, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_opsgit("kv", *args, env=agent.env(), input=stdin, timeout=60, cwd=None)


def test_put_get_recurse_keys_delete(agent: AgentProcess) -> None:
    prefix = f"cli/{uuid.uuid4().hex[:8]}"
    assert kv(agent, "put", f"{prefix}/redis_addr", "10.0.0.7:6379").stdout == \
        f"Success! Data written to: {prefix}/redis_addr\n"
    assert kv(agent, "put", f"{prefix}/from_stdin", "-", stdin="piped").returncode == 0
    assert kv(agent, "get", f"{prefix}/redis_addr").stdout == "10.0.0.7:6379\n"
    assert kv(agent, "get", "--recurse", prefix).stdout == \
        f"{prefix}/from_stdin:piped\n{prefix}/redis_addr:10.0.0.7:6379\n"
    assert kv(agent, "get", "--keys", f"{prefix}/").stdout == f"{prefix}/from_stdin\n{prefix}/redis_addr\n"
    assert kv(agent, "delete", "--recurse", prefix).returncode == 0
    missing = kv(agent, "get", f"{prefix}/redis_addr")
    assert missing.returncode == 1 and missing.stderr.strip() == f"error: no key exists at: {prefix}/redis_addr"


def test_cas_and_flags(agent: AgentProcess) -> None:
    key = f"cli/{uuid.uuid4().hex[:8]}"
    assert kv(agent, "put", "--flags", "42", "--cas", "--modify-index", "0", key, "first").returncode == 0
    again = kv(agent, "put", "--cas", "--modify-index", "0", key, "second")
    assert again.returncode == 1 and "CAS failed" in again.stderr
    assert "Flags           42" in kv(agent, "get", "--detailed", key).stdout


def test_export_import_round_trip(agent: AgentProcess, tmp_path: Path) -> None:
    prefix = f"cli/{uuid.uuid4().hex[:8]}"
    kv(agent, "put", f"{prefix}/a", "alpha")
    kv(agent, "put", "--flags", "3", f"{prefix}/b", "beta")
    exported = kv(agent, "export", prefix).stdout
    entries = json.loads(exported)
    assert [(e["key"], e["flags"]) for e in entries] == [(f"{prefix}/a", 0), (f"{prefix}/b", 3)]
    kv(agent, "delete", "--recurse", prefix)
    (tmp_path / "dump.json").write_text(exported)
    imported = kv(agent, "import", f"@{tmp_path / 'dump.json'}")
    assert imported.stdout.splitlines() == [f"Imported: {prefix}/a", f"Imported: {prefix}/b"]
    assert kv(agent, "get", f"{prefix}/b").stdout == "beta\n"


def test_bad_import_and_unreachable_consul(agent: AgentProcess) -> None:
    bad = kv(agent, "import", "-", stdin="[{not json")
    assert bad.returncode == 1 and "cannot import" in bad.stderr and "Traceback" not in bad.stderr
    down = run_opsgit("kv", "get", "x", env={**agent.env(), "CONSUL_HTTP_ADDR": "127.0.0.1:1"}, timeout=60, cwd=None)
    assert down.returncode == 1
    assert "cannot reach Consul at http://127.0.0.1:1" in down.stderr
