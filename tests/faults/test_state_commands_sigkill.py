"""SIGKILL of `opsgit state mv`, `state rm` and `import` at exact system calls and at random
moments: the state is always the old one or the new one, never a half-done change (read from the
state files without opsgit)."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import OPSGIT, opsgit_environment, run_opsgit, start_opsgit, write_tree
from tests.faults.conftest import record, trials

COUNT = 30
ENV = "modules:\n  m: {source: m}\n"
MODULE = f"resources:\n  null_resource.n:\n    count: {COUNT}\n    triggers: {{index: \"${{count.index}}\"}}\n"


def addresses(root: Path) -> dict[str, str]:
    """Address -> id, from the compacted state and the journal after it, as a reader of the files sees them."""
    directory = root / ".opsgit" / "state"
    data = json.loads((directory / "t.json").read_text())
    found = {r["address"]: r["id"] for r in data["resources"]}
    journal = directory / "t.journal"
    for line in journal.read_text().splitlines() if journal.exists() else []:
        try:
            entry = json.loads(line)
        except ValueError:
            break
        if entry["serial"] <= data["serial"]:
            continue
        if entry["resource"]:
            found[entry["address"]] = entry["resource"]["id"]
        else:
            found.pop(entry["address"], None)
    return found


# strace kills the command at an exact system call (`-e inject=SYSCALL:signal=KILL:when=N`): at
# the journal's second write (where `state mv` used to leave only its removal), then at each
# link and rename of the state write.
KILL_POINTS = [("write", "journal", 1), ("write", "journal", 2), ("link,linkat", None, 1),
               ("rename,renameat,renameat2", None, 1), ("rename,renameat,renameat2", None, 2)]


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is installed by `make test`")
@pytest.mark.parametrize(("calls", "path", "when"), KILL_POINTS)
def test_state_mv_killed_at_each_write_leaves_the_old_state_or_the_new(
        tmp_path: Path, calls: str, path: str | None, when: int) -> None:
    root = write_tree(tmp_path / "ops", {"environments/t/env.yaml": ENV, "modules/m/module.yaml": MODULE})
    assert run_opsgit("apply", "--env", "t", "--auto-approve", cwd=root).returncode == 0
    before = addresses(root)
    source = "module.m.null_resource.n[0]"
    filters = ["-P", str(root / ".opsgit/state/t.journal")] if path == "journal" else []
    command = ["strace", "-f", "-qq", "-o", "/dev/null", *filters, "-e", f"trace={calls}",
               "-e", f"inject={calls}:signal=KILL:when={when}", *OPSGIT, "state", "mv", "--env", "t", source,
               "null_resource.moved"]
    subprocess.run(command, cwd=root, env=opsgit_environment(), capture_output=True, check=False, timeout=120)
    after = addresses(root)
    moved = {**{a: i for a, i in before.items() if a != source}, "null_resource.moved": before[source]}
    assert after in (before, moved), sorted(set(before) ^ set(after))


@pytest.mark.slow  # random kills: `make test-slow` and `make test-faults`
def test_killed_state_commands_leave_the_old_state_or_the_new(tmp_path: Path) -> None:
    runs = trials(40)
    root = write_tree(tmp_path / "ops", {"environments/t/env.yaml": ENV, "modules/m/module.yaml": MODULE})
    assert run_opsgit("apply", "--env", "t", "--auto-approve", cwd=root).returncode == 0
    rng = random.Random(2024)
    killed = lost = 0
    for trial in range(runs):
        before = addresses(root)
        ids = sorted(before.values())
        source = rng.choice(sorted(before))
        verb = rng.choice(["mv", "rm", "import"]) if trial else "mv"
        if verb == "mv":
            args = ["state", "mv", "--env", "t", source, f"null_resource.moved{trial}"]
        elif verb == "rm":
            args = ["state", "rm", "--env", "t", source]
        else:
            missing = next((f"module.m.null_resource.n[{i}]" for i in range(COUNT)
                            if f"module.m.null_resource.n[{i}]" not in before), None)
            if missing is None:
                continue
            args = ["import", "--env", "t", missing, "4242"]
        process = start_opsgit(*args, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.9))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        code = process.wait()
        after = addresses(root)
        if verb == "mv":
            moved = f"null_resource.moved{trial}"
            done = source not in after and after.get(moved) == before[source]
            untouched = after == before
            assert done or untouched, (trial, args, code)
            assert sorted(after.values()) == ids
        elif verb == "rm":
            assert after == before or after == {a: i for a, i in before.items() if a != source}, (trial, args, code)
        else:
            assert after == before or (set(after) - set(before) == {args[3]} and len(after) == len(before) + 1)
        lost += len(set(before.values()) - set(after.values())) if verb == "mv" else 0
    record("SIGKILL of `opsgit state mv|rm` and `import` at random moments (30 null resources)", trials=runs,
           faults=killed, lost=lost, note="each command's change is one atomic state write: old state or new")
