"""Loading the monorepo into frozen values."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from opsgit.config import load_settings
from opsgit.repo import load_repo
from tests.conftest import REPO_ROOT


def test_example_loads_into_values() -> None:
    repo = load_repo(REPO_ROOT)
    assert sorted(repo.environments) == ["cloud", "dev", "global", "prod", "staging"]
    assert sorted(repo.roles) == ["binstore", "consul", "web"]
    assert sorted(repo.modules) == ["binstore", "edge", "network", "redis", "shared", "vpc", "webapp"]
    dev = repo.environments["dev"]
    assert [m.name for m in dev.modules] == ["network", "redis", "binstore", "web-east", "web-west"]
    assert dev.images["binstore"] == "ami-12c6146b"
    assert dev.state == {"backend": "local"} and dev.lock == {"backend": "local"}
    nodes = repo.modules["binstore"].variables["nodes_green"]
    assert (nodes.type, nodes.default, nodes.required) == ("number", 0, False)
    assert repo.modules["binstore"].variables["ami_blue"].required
    assert repo.roles["web"].template_files == ("haproxy.cfg.j2",)
    assert repo.settings.org == "hashicorp-ops"


def test_values_are_frozen() -> None:
    repo = load_repo(REPO_ROOT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        repo.environments["dev"].name = "other"  # type: ignore[misc]


def test_origin_finds_the_line_of_a_key() -> None:
    dev = load_repo(REPO_ROOT).environments["dev"]
    web_west = next(m for m in dev.modules if m.name == "web-west")
    line = web_west.origin.line
    assert line is not None
    assert (REPO_ROOT / "environments/dev/env.yaml").read_text().splitlines()[line - 1].strip() == "web-west:"


def test_settings_default_without_a_table(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert settings.build_path == tmp_path / "build"
    assert settings.status_context_prefix == "opsgit"
