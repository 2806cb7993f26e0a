"""Affected detection on real git repositories made from the example."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import copy_example, run_opsgit, write_tree


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = copy_example(tmp_path / "ops")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    git(root, "checkout", "-q", "-b", "change")
    return root


def affected(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_opsgit("affected", "--base", "main", "--json", *args, cwd=repo, timeout=120)


def impacts(repo: Path) -> dict[str, set[tuple[str, str]]]:
    result = affected(repo)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    return {kind: {(i["name"], i["action"]) for i in data[kind]} for kind in ("environments", "images", "configs")}


def commit(repo: Path, change: Callable[[Path], None]) -> None:
    change(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "change")


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_module_edit_affects_exactly_the_environments_whose_output_changes(repo: Path) -> None:
    # staging and dev take redis' default instance type; prod sets its own, so prod renders the same
    commit(repo, lambda r: replace(r / "modules/redis/module.yaml", "default: t3.small", "default: t3.medium"))
    assert impacts(repo) == {"environments": {("dev", "plan"), ("staging", "plan")}, "images": set(), "configs": set()}


def test_comment_only_edit_affects_nothing(repo: Path) -> None:
    commit(repo, lambda r: replace(r / "modules/webapp/module.yaml", "resources:", "# the app\nresources:"))
    assert impacts(repo) == {"environments": set(), "images": set(), "configs": set()}


def test_one_env_file(repo: Path) -> None:
    commit(repo, lambda r: replace(r / "environments/prod/env.yaml", "count: 4", "count: 5"))
    assert impacts(repo)["environments"] == {("prod", "plan")}


def test_role_template_affects_its_image_and_bundle_only(repo: Path) -> None:
    commit(repo, lambda r: replace(r / "roles/web/templates/haproxy.cfg.j2", "maxconn 4096", "maxconn 8192"))
    assert impacts(repo) == {"environments": set(), "images": {("web", "build")}, "configs": {("web", "build")}}


def test_packer_template_affects_every_image(repo: Path) -> None:
    commit(repo, lambda r: replace(r / "templates/packer.json.j2", '"instance_type": "t3.micro"',
                                   '"instance_type": "t3.small"'))
    assert impacts(repo) == {"environments": set(), "configs": set(),
                             "images": {("binstore", "build"), ("consul", "build"), ("web", "build")}}


def test_deleted_environment_is_destroyed_and_rename_is_both(repo: Path) -> None:
    git(repo, "rm", "-rq", "environments/staging")
    git(repo, "mv", "environments/prod", "environments/production")
    git(repo, "commit", "-qm", "reshape")
    assert impacts(repo)["environments"] == {("staging", "destroy"), ("prod", "destroy"), ("production", "plan")}


def on_main(repo: Path, change: Callable[[Path], None]) -> None:
    """Make `change` part of the merge base too (the fixture's branch starts at main)."""
    git(repo, "checkout", "-q", "main")
    commit(repo, change)
    git(repo, "checkout", "-q", "change")
    git(repo, "reset", "-q", "--hard", "main")


def test_a_template_an_env_yaml_value_includes(repo: Path) -> None:
    def include(root: Path) -> None:
        write_tree(root, {"templates/motd.txt": "welcome"})
        replace(root / "environments/dev/env.yaml", '      name: "{{ var.name }}"\n',
                '      name: "{{ var.name }}-{% include \'motd.txt\' %}"\n')
    on_main(repo, include)
    commit(repo, lambda r: write_tree(r, {"templates/motd.txt": "hello"}))
    assert impacts(repo)["environments"] == {("dev", "plan")}


def test_a_template_a_module_reaches_through_another_template(repo: Path) -> None:
    def imports(root: Path) -> None:
        write_tree(root, {"templates/names.j2": '{% import "suffix.j2" as s %}{% macro zone(n) %}{{ n }}.{{ s.tld() }}'
                          '{% endmacro %}', "templates/suffix.j2": "{% macro tld() %}internal{% endmacro %}"})
        replace(root / "modules/network/module.yaml", "resources:\n", '{% import "names.j2" as names %}\nresources:\n')
        replace(root / "modules/network/module.yaml", 'name: "{{ var.name }}.{{ var.domain }}"',
                'name: "{{ names.zone(var.name) }}"')
    on_main(repo, imports)
    commit(repo, lambda r: write_tree(r, {"templates/suffix.j2": "{% macro tld() %}corp{% endmacro %}"}))
    assert impacts(repo)["environments"] == {("dev", "plan"), ("staging", "plan"), ("prod", "plan")}


def test_a_module_instantiated_under_a_name_jinja_computes(repo: Path) -> None:
    def nest(root: Path) -> None:
        write_tree(root, {"modules/ns/module.yaml": "variables:\n  zone: {type: string}\n---\nresources:\n"
                          "  aws_route53_record.ns:\n    zone_id: \"{{ var.zone }}\"\n    name: ns\n    type: NS\n"
                          "    ttl: 300\n    records: [ns1.example.internal]\n"})
        replace(root / "modules/network/module.yaml", "outputs:\n",
                "modules:\n  dns:\n    source: \"{{ 'n' ~ 's' }}\"\n"
                "    inputs: {zone: \"${aws_route53_zone.internal.zone_id}\"}\noutputs:\n")
    on_main(repo, nest)
    commit(repo, lambda r: replace(r / "modules/ns/module.yaml", "ttl: 300", "ttl: 600"))
    assert impacts(repo)["environments"] == {("dev", "plan"), ("staging", "plan"), ("prod", "plan")}


def test_a_role_an_environment_lists_removed(repo: Path) -> None:
    git(repo, "rm", "-rq", "roles/consul")
    git(repo, "commit", "-qm", "no consul role")
    found = impacts(repo)
    # every environment lists consul: none of them loads now, and planning says why
    assert found["environments"] == {("dev", "plan"), ("staging", "plan"), ("prod", "plan")}
    assert ("consul", "delete") in found["images"]


def test_the_organisation_in_pyproject_reaches_every_image(repo: Path) -> None:
    commit(repo, lambda r: replace(r / "pyproject.toml", "org = \"hashicorp-ops\"", "org = \"acme\""))
    assert impacts(repo)["images"] == {("binstore", "build"), ("consul", "build"), ("web", "build")}


def test_bad_refs_and_shallow_clones(repo: Path, tmp_path: Path) -> None:
    missing = affected(repo, "--head", "no-such-branch")
    assert missing.returncode == 1 and "head 'no-such-branch' does not exist" in missing.stderr
    nobase = run_opsgit("affected", "--base", "origin/nope", cwd=repo)
    assert nobase.returncode == 1 and "base 'origin/nope' does not exist" in nobase.stderr
    git(repo, "checkout", "-q", "--orphan", "lonely")
    git(repo, "commit", "-qm", "unrelated history")
    orphan = affected(repo)
    assert orphan.returncode == 1 and "have no common ancestor" in orphan.stderr
    assert "git fetch --unshallow" in orphan.stderr and "Traceback" not in orphan.stderr


@pytest.mark.parametrize("change", [
    lambda r: replace(r / "modules/redis/module.yaml", "default: t3.small", "default: t3.medium"),
    lambda r: replace(r / "modules/redis/module.yaml", "variables:", "# a comment\nvariables:"),
    lambda r: replace(r / "roles/web/templates/haproxy.cfg.j2", "maxconn 4096", "maxconn 8192"),
    lambda r: (r / "environments/dev/images.yaml").unlink(),
], ids=["module", "comment", "role-template", "images-file-deleted"])
def test_a_complete_render_of_the_merge_base_gives_the_same_answer(repo: Path, change: Callable[[Path], None]
                                                                   ) -> None:
    commit(repo, change)
    uncached = json.loads(affected(repo).stdout)
    assert uncached["base_from_build"] is False
    git(repo, "checkout", "-q", "main")
    assert run_opsgit("render", cwd=repo).returncode == 0
    git(repo, "checkout", "-q", "change")
    cached = json.loads(affected(repo).stdout)
    assert cached["base_from_build"] is True
    assert {k: cached[k] for k in ("environments", "images", "configs")} == \
        {k: uncached[k] for k in ("environments", "images", "configs")}
    (repo / "environments/prod/env.yaml").write_text((repo / "environments/prod/env.yaml").read_text() + "\n")
    git(repo, "checkout", "-q", "main")
    run_opsgit("render", cwd=repo)
    git(repo, "checkout", "-q", "change")
    assert json.loads(affected(repo).stdout)["base_from_build"] is False  # rendered with an uncommitted edit


def test_an_exported_commit_holds_regular_files_only(repo: Path, tmp_path: Path) -> None:
    from opsgit.gitops.diff import export_tree

    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t-outside-the-repository")
    (repo / "templates/outside.txt").symlink_to(secret)
    (repo / "templates/link-dir").symlink_to(tmp_path)
    commit(repo, lambda r: None)
    target = tmp_path / "export"
    target.mkdir()
    written = export_tree(repo, "HEAD", target, ["templates", "modules/redis"])
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == [
        "modules", "modules/redis", "modules/redis/module.yaml", "templates", "templates/macros.j2",
        "templates/packer.json.j2"]
    assert written == 3


@pytest.mark.parametrize(("text", "opaque"), [
    ('    source: "{{ var.kind }}"', True),        # a child module named by Jinja
    ('  "source": "{{ k }}"', True),
    ("  {{ name }}:\n    source: redis", True),    # a key written by Jinja could be `source`
    ('  {"{{ k }}": 1}', True),
    ('{% import "names.j2" as names %}', True),    # a template could hold modules: too
    ('{%- include "x.j2" %}', True),
    ('address: "{{ var.name }}:{{ var.port }}"', False),
    ('source_ami: "{{ var.ami }}"', False),
    ('description: "open source {{ x }}"', False),
    ("  aws_launch_configuration.{{ colour }}:", False),
    ("    source: redis", False),
])
def test_which_texts_hide_the_modules_they_instantiate(text: str, opaque: bool) -> None:
    from opsgit.gitops.affected import _opaque

    # an opaque text makes every module a candidate for its environments; a false positive only
    # costs renders, a false negative would miss an affected environment
    assert _opaque(text) is opaque


def test_an_environment_s_image_settings_reach_its_images_only(repo: Path) -> None:
    commit(repo, lambda r: replace(r / "environments/staging/env.yaml", "    instance_type: t3.small\n",
                                   "    instance_type: t3.medium\n"))
    result = json.loads(affected(repo).stdout)
    # the templates are the same, but staging's Packer variables changed: its builds of every role it runs
    assert {(i["name"], i["action"], tuple(i["reasons"])) for i in result["images"]} == {
        (role, "build", ("environments/staging/env.yaml",)) for role in ("binstore", "consul", "web")}
    assert result["environments"] == [] and result["configs"] == []


def test_an_env_yaml_edit_elsewhere_builds_no_image(repo: Path) -> None:
    commit(repo, lambda r: replace(r / "environments/prod/env.yaml", "count: 4", "count: 5"))
    assert impacts(repo) == {"environments": {("prod", "plan")}, "images": set(), "configs": set()}


def test_policy_changes_affect_the_environments_whose_verdict_can_change(repo: Path) -> None:
    """A plan's policy verdict is part of what a pull request shows: a changed check or
    `[tool.opsgit.policy]` reaches every environment, an env.yaml's skips only that one."""
    commit(repo, lambda r: replace(r / "environments/dev/env.yaml", "    CKV_AWS_25:", "    CKV_AWS_26:"))
    assert impacts(repo)["environments"] == {("dev", "plan")}
    commit(repo, lambda r: replace(r / "policies/autoscaling_environment_tag.py", '"Environment" in keys',
                                   '"Environment" in keys and "Name" in keys'))
    assert impacts(repo)["environments"] == {(e, "plan") for e in ("cloud", "dev", "global", "prod", "staging")}


def test_a_comment_in_the_policy_table_affects_nothing(repo: Path) -> None:
    commit(repo, lambda r: replace(r / "pyproject.toml", "[tool.opsgit.policy]\n", "[tool.opsgit.policy]\n# x\n"))
    assert impacts(repo)["environments"] == set()
