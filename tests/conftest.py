from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PARTS = ("environments", "roles", "modules", "templates", "policies", "pyproject.toml", "tasks.py")
BROKEN = REPO_ROOT / "tests" / "fixtures" / "broken"


def copy_example(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for part in EXAMPLE_PARTS:
        source = REPO_ROOT / part
        if source.is_dir():
            shutil.copytree(source, target / part)
        else:
            shutil.copy2(source, target / part)
    return target


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A private copy of the example monorepo."""
    return copy_example(tmp_path / "ops")


def write_tree(root: Path, files: Mapping[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


OPSGIT = (sys.executable, "-m", "opsgit")


CI_MARKERS = ("OPSGIT_", "GITHUB_", "GITLAB_", "CI_")


def opsgit_environment(env: Mapping[str, str] | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` as given (default: this process's, without OPSGIT_ settings and without the CI job's
    own markers — a test that runs in CI still runs opsgit as from a laptop unless it says
    otherwise through `extra`), with `extra` on top.
    Policy checks (checkov, seconds a plan) are off unless a test turns them on
    (`OPSGIT_POLICY=auto` or `--policy true`: tests/test_policy.py); where checkov is stays known."""
    base = dict(env) if env is not None else {k: v for k, v in os.environ.items()
                                              if not k.startswith(CI_MARKERS) and k != "CI"}
    base.setdefault("OPSGIT_POLICY", "false")
    if "OPSGIT_CHECKOV" in os.environ:
        base.setdefault("OPSGIT_CHECKOV", os.environ["OPSGIT_CHECKOV"])
    return {**base, **(extra or {})}


def start_opsgit(*args: str, cwd: Path | None, env: Mapping[str, str] | None = None,
                 extra: Mapping[str, str] | None = None, stdout: int | IO[Any] | None = subprocess.PIPE,
                 stderr: int | IO[Any] | None = subprocess.PIPE) -> subprocess.Popen[str]:
    """The real command line as a child process that runs on: `opsgit ARGS` in `cwd`."""
    return subprocess.Popen([*OPSGIT, *args], cwd=cwd, env=opsgit_environment(env, extra), stdout=stdout,
                            stderr=stderr, text=True)


def run_opsgit(*args: str, cwd: Path | None, env: Mapping[str, str] | None = None,
               extra: Mapping[str, str] | None = None, timeout: float = 120,
               input: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line, in a child process, run to its end: `opsgit ARGS` in `cwd`. Every
    JSON plan it prints is checked against Terraform's plan format (`tests/terraform_plan.py`)."""
    result = subprocess.run([*OPSGIT, *args], cwd=cwd, env=opsgit_environment(env, extra), capture_output=True,
                            text=True, timeout=timeout, check=False, input=input)
    if args and args[0] in ("plan", "show") and "--json" in args and result.returncode in (0, 2) and \
            "--affected" not in args:
        from tests.terraform_plan import check

        check(json.loads(result.stdout))
    return result


def venv_bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


@pytest.fixture
def in_directory(tmp_path: Path) -> Iterator[Path]:
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def apply_global(root: Path, env: Mapping[str, str]) -> None:
    """The example's dev, staging and prod read outputs of `global`: apply it first, on the AWS
    endpoint `env` names, after the team's one step by hand (`make demo` does the same): the
    versioned bucket global's state lives in."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id=env.get("AWS_ACCESS_KEY_ID", "test"),
                      aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", "test"))
    if "hashicorp-ops-state" not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket="hashicorp-ops-state")
        s3.put_bucket_versioning(Bucket="hashicorp-ops-state", VersioningConfiguration={"Status": "Enabled"})
    applied = run_opsgit("apply", "--env", "global", "--auto-approve", cwd=root, env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr


def without_global(root: Path) -> None:
    """dev with global's values written in (`ops.internal`, its image bucket): for a test of
    something else against an AWS endpoint that cannot hold global's state."""
    path = root / "environments/dev/env.yaml"
    text = path.read_text().replace("${environment.global.outputs.zone_name}", "ops.internal")
    path.write_text(text.replace("${environment.global.outputs.images_bucket}", "hashicorp-ops-images"))
