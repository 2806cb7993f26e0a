"""Image templates: Packer's own expressions survive Jinja, and the real packer accepts them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsgit.images.packer import packer_binary
from opsgit.render.images import is_packer_expression, protect_packer
from tests.conftest import run_opsgit

needs_packer = pytest.mark.skipif(packer_binary() is None, reason="packer is installed by `make test`")


@pytest.mark.parametrize("expression", ["timestamp", " env `HC_ROLE` ", "user `role`", " .Vars ",
                                        'isotime "2006-01-02"', "uuid", "build_name"])
def test_packer_expressions_are_recognised(expression: str) -> None:
    assert is_packer_expression(expression)


@pytest.mark.parametrize("expression", [" role.name ", " roles | length ", " to_json(x) ", " env.name ",
                                        " user_name "])
def test_jinja_expressions_are_not_packer(expression: str) -> None:
    assert not is_packer_expression(expression)


def test_protect_keeps_packer_inside_jinja_strings_for_jinja() -> None:
    source = '{{ m.stage(role, "{{user `dir`}}/root") }} "{{timestamp}}" {% raw %}{{x}}{% endraw %}'
    assert protect_packer(source) == ('{{ m.stage(role, "{{user `dir`}}/root") }} '
                                      '"{% raw %}{{timestamp}}{% endraw %}" {% raw %}{{x}}{% endraw %}')


def test_rendered_template_keeps_packer_expressions_untouched(example: Path) -> None:
    assert run_opsgit("render", "--role", "binstore", cwd=example).returncode == 0
    text = (example / "build/images/binstore/packer.json").read_text()
    template = json.loads(text)
    assert template["variables"]["role"] == "{{ env `HC_ROLE` }}"
    ebs = next(b for b in template["builders"] if b["type"] == "amazon-ebs")
    assert ebs["ami_name"] == "{{user `role`}}-{{timestamp}}"
    assert template["description"].startswith("Image for role binstore")
    provision = next(p for p in template["provisioners"] if p["type"] == "shell" and "apt-get" in " ".join(p["inline"]))
    assert "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light jq" in provision["inline"]


@needs_packer
def test_packer_validate_accepts_every_rendered_template(example: Path) -> None:
    result = run_opsgit("validate", cwd=example)
    assert result.returncode == 0, result.stderr
    assert "packer validate passed for 3 image templates and 9 environment builds" in result.stdout


@needs_packer
def test_packer_rejection_is_a_user_error(example: Path) -> None:
    template = example / "templates/packer.json.j2"
    template.write_text(template.read_text().replace('"ssh_username": "admin",', ""))
    result = run_opsgit("validate", cwd=example)
    assert result.returncode == 1
    assert "packer validate rejected the image template of role" in result.stderr
    assert "ssh_username" in result.stderr
