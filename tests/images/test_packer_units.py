"""Packer's manifest, image ids, variable checks and promotion, as plain values and files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsgit.errors import UserError
from opsgit.images.packer import BuiltArtefact, PackerVariable, check_variables, image_id, last_run_builds
from opsgit.images.promote import promote

TEMPLATE = {"variables": {"region": "us-east-1", "role": "", "instance_type": "t3.micro"},
            "builders": [{"type": "null", "name": "local"}, {"type": "amazon-ebs"}]}


def test_only_the_builds_of_the_last_run_count(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"builds": [
        {"name": "amazon-ebs", "builder_type": "amazon-ebs", "artifact_id": "us-east-1:ami-old",
         "packer_run_uuid": "run-1", "build_time": 1},
        {"name": "amazon-ebs", "builder_type": "amazon-ebs", "artifact_id": "us-east-1:ami-new",
         "packer_run_uuid": "run-2", "build_time": 2}], "last_run_uuid": "run-2"}))
    assert [b.artifact_id for b in last_run_builds(manifest)] == ["us-east-1:ami-new"]


def test_an_ami_build_gives_the_ami_of_the_environments_region(tmp_path: Path) -> None:
    build = BuiltArtefact("amazon-ebs", "amazon-ebs", "us-east-1:ami-0aaa,us-west-2:ami-0bbb", (), "r", 1)
    assert image_id(build, tmp_path, "web", "us-west-2") == "ami-0bbb"
    assert image_id(build, tmp_path, "web", "us-east-1") == "ami-0aaa"


def test_a_file_build_is_named_by_its_content(tmp_path: Path) -> None:
    (tmp_path / "web.tar.gz").write_bytes(b"one")
    build = BuiltArtefact("local", "null", "", ("web.tar.gz",), "r", 1)
    first = image_id(build, tmp_path, "web", None)
    assert first.startswith("local-web-") and image_id(build, tmp_path, "web", None) == first
    (tmp_path / "web.tar.gz").write_bytes(b"two")
    assert image_id(build, tmp_path, "web", None) != first


def test_an_undeclared_variable_is_refused_with_a_suggestion() -> None:
    check_variables(TEMPLATE, [PackerVariable("region", "eu-west-1", "--var")], "templates/packer.json.j2")
    with pytest.raises(UserError, match=r"'regoin' \(from environments/prod/env.yaml images.variables\) is not "
                                        r"declared.*did you mean 'region'"):
        check_variables(TEMPLATE, [PackerVariable("regoin", "x", "environments/prod/env.yaml images.variables")],
                        "templates/packer.json.j2")


def test_promotion_changes_one_line_and_keeps_comments(tmp_path: Path) -> None:
    images = tmp_path / "images.yaml"
    original = ("# Images promoted to prod.\nbinstore: ami-0b7d9f1a3c5e7a904   # green runs this\n"
                "consul: 'ami-0c9d2e4f6a8b1c302'\nweb: ami-0e5f7a9b1c3d5e703\n")
    images.write_text(original)
    assert promote(images, "images.yaml", "consul", "ami-0fff") == "ami-0c9d2e4f6a8b1c302"
    before, after = original.splitlines(), images.read_text().splitlines()
    assert [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b] == [2]
    assert after[2] in ("consul: 'ami-0fff'", "consul: ami-0fff")
    assert promote(images, "images.yaml", "web", "ami-0e5f7a9b1c3d5e703") == "ami-0e5f7a9b1c3d5e703"  # no change
    fresh = tmp_path / "new" / "images.yaml"
    assert promote(fresh, "new/images.yaml", "web", "local-web-1") is None
    assert fresh.read_text().endswith("web: local-web-1\n") and fresh.read_text().startswith("# Images promoted")
