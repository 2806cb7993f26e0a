"""The S3 state backend against moto_server: journal, compaction, and conditional writes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from opsgit.engine.backends.s3 import S3Backend, StateConflict
from opsgit.engine.state import ResourceState, State
from tests.agent_process import MotoProcess


@pytest.fixture
def bucket(moto: MotoProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for key, value in {"AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    name = f"state-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    yield name


def node(name: str) -> ResourceState:
    return ResourceState(f"null_resource.{name}", "null_resource", "null", name, {"triggers": {}})


def test_journal_replay_and_compaction(bucket: str, tmp_path: Path) -> None:
    backend = S3Backend({"bucket": bucket, "key": "dev/state.json"}, "dev", tmp_path)
    state = backend.load()
    backend.record(state.lineage, 1, "null_resource.a", node("a"))
    backend.record(state.lineage, 2, "null_resource.b", node("b"))
    crashed = S3Backend({"bucket": bucket, "key": "dev/state.json"}, "dev", tmp_path).load()
    assert sorted(crashed.resources) == ["null_resource.a", "null_resource.b"] and crashed.serial == 2
    final = State(state.lineage, 3, {"null_resource.a": node("a"), "null_resource.b": node("b")}, {})
    backend.compact(final)
    s3 = boto3.client("s3")
    assert s3.list_objects_v2(Bucket=bucket, Prefix="dev/state.json.journal/").get("KeyCount") == 0
    stored = json.loads(s3.get_object(Bucket=bucket, Key="dev/state.json")["Body"].read())
    assert stored["serial"] == 3


def test_two_writers_one_wins_the_other_fails_loudly(bucket: str, tmp_path: Path) -> None:
    first = S3Backend({"bucket": bucket}, "dev", tmp_path)
    second = S3Backend({"bucket": bucket}, "dev", tmp_path)
    base = first.load()
    first.compact(base)
    a, b = first.load(), second.load()
    first.record(a.lineage, a.serial + 1, "null_resource.a", node("a"))
    with pytest.raises(StateConflict, match="another run is writing"):
        second.record(b.lineage, b.serial + 1, "null_resource.b", node("b"))
    first.compact(State(a.lineage, a.serial + 2, {"null_resource.a": node("a")}, {}))
    with pytest.raises(StateConflict, match="changed by another writer"):
        second.compact(State(b.lineage, b.serial + 2, {"null_resource.b": node("b")}, {}))
    assert list(S3Backend({"bucket": bucket}, "dev", tmp_path).load().resources) == ["null_resource.a"]
