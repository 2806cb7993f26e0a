"""Missing credentials and an unreachable AWS endpoint are the user's to fix: exit 1, one line that
says what to set, within seconds — never "a bug in opsgit" (real processes on the example's prod,
whose state lives in S3)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.conftest import run_opsgit

NO_AWS = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPSGIT_", "CONSUL_"))}
NOWHERE = {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
           "AWS_EC2_METADATA_DISABLED": "true", "CONSUL_HTTP_ADDR": "127.0.0.1:9"}


def test_plan_without_credentials_says_what_to_set(example: Path) -> None:
    result = run_opsgit("plan", "--env", "prod", cwd=example, env={**NO_AWS, **NOWHERE})
    assert result.returncode == 1, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: no usable AWS credentials")
    assert "AWS_PROFILE" in line and "AWS_ACCESS_KEY_ID" in line and "AWS_ENDPOINT_URL" in line
    assert "a bug in opsgit" not in result.stderr and "Traceback" not in result.stderr


def test_an_unreachable_endpoint_is_named_within_seconds(example: Path) -> None:
    started = time.monotonic()
    result = run_opsgit("plan", "--env", "prod", cwd=example,
                        env={**NO_AWS, **NOWHERE, "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
                             "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert time.monotonic() - started < 10
    assert result.returncode == 1, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: cannot reach the AWS endpoint http://127.0.0.1:9 (AWS_ENDPOINT_URL)")
    assert "a bug in opsgit" not in result.stderr
