"""Two writers of one S3 state at once: one wins, the other fails loudly; nothing is silently
overwritten, and the local backend's journal survives a torn write."""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

import boto3
import pytest

from opsgit.engine.backends.s3 import S3Backend, StateConflict
from opsgit.engine.state import ResourceState, State
from tests.agent_process import MotoProcess
from tests.faults.conftest import record, trials

# Fault trials: `make test-slow` and `make test-faults` run them.
pytestmark = pytest.mark.slow


def node(name: str) -> ResourceState:
    return ResourceState(f"null_resource.{name}", "null_resource", "null", name, {"triggers": {}})


def test_racing_writers_one_wins_the_other_fails_loudly(tmp_path: Path, moto: MotoProcess,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    runs = trials(10)
    silent = refused = 0
    for _ in range(runs):
        bucket = f"race-{uuid.uuid4().hex[:8]}"
        boto3.client("s3").create_bucket(Bucket=bucket)
        seed = S3Backend({"bucket": bucket}, "dev", tmp_path)
        seed.compact(seed.load())
        outcomes: dict[str, str] = {}
        barrier = threading.Barrier(2)

        def write(name: str, bucket: str = bucket, outcomes: dict[str, str] = outcomes,
                  barrier: threading.Barrier = barrier) -> None:
            backend = S3Backend({"bucket": bucket}, "dev", tmp_path)
            state = backend.load()
            barrier.wait()
            try:
                backend.record(state.lineage, state.serial + 1, f"null_resource.{name}", node(name))
                backend.compact(State(state.lineage, state.serial + 2, {f"null_resource.{name}": node(name)}, {}))
                outcomes[name] = "won"
            except StateConflict as error:
                outcomes[name] = f"refused: {error}"

        threads = [threading.Thread(target=write, args=(name,)) for name in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [name for name, outcome in outcomes.items() if outcome == "won"]
        final = S3Backend({"bucket": bucket}, "dev", tmp_path).load()
        assert len(winners) == 1, outcomes
        refused += 1
        if sorted(final.resources) != [f"null_resource.{winners[0]}"]:
            silent += 1
        assert sorted(final.resources) == [f"null_resource.{winners[0]}"], (outcomes, final.resources)
    record("Two writers of one S3 state at the same moment (conditional puts on moto_server)", trials=runs,
           faults=refused, lost=silent, note="every trial: exactly one writer won, the other got StateConflict")


def test_a_read_only_or_full_build_directory_fails_clearly_and_writes_nothing(tmp_path: Path) -> None:
    import subprocess

    from tests.conftest import copy_example, run_opsgit

    root = copy_example(tmp_path / "ops")
    build = tmp_path / "build"
    build.mkdir()
    build.chmod(0o555)
    env = {**os.environ, "OPSGIT_BUILD_DIR": str(build)}
    faults = 0
    if os.geteuid() != 0:  # root writes anywhere; the full-disk case below covers root
        result = run_opsgit("render", cwd=root, env=env, timeout=120)
        assert result.returncode == 1 and "cannot write the build directory" in result.stderr
        faults += 1
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], capture_output=True,
                             check=False).returncode == 0
    if mounted:
        try:
            (small / "previous").mkdir()
            (small / "previous" / "keep").write_text("the last good build")
            env["OPSGIT_BUILD_DIR"] = str(small)
            result = run_opsgit("render", cwd=root, env=env, timeout=120)
            assert result.returncode == 1, result.stdout + result.stderr
            assert "cannot write the build directory" in result.stderr and "Traceback" not in result.stderr
            assert sorted(p.name for p in small.iterdir()) == ["previous"]  # no half-written staging left
            assert (small / "previous" / "keep").read_text() == "the last good build"
            faults += 1
        finally:
            subprocess.run(["umount", str(small)], check=False)
    if not faults:
        pytest.skip("needs a non-root user (read-only) or the right to mount a small tmpfs (disk full)")
    record("Build directory read-only or full (a 64 KiB tmpfs)", trials=faults, faults=faults, lost=0,
           note="one clear error; the staging directory removed; the previous build untouched")
