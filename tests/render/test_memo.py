"""Rendering two commits through one memo gives exactly what two separate renders give.

Affected detection renders each candidate environment at the merge base and then at head, and
the head side replays every module instance the base side recorded when nothing it depends on
changed. Each case below changes something a replay could get wrong; for every environment, the
memo's graphs must be byte for byte the separate renders' (sources included), and the memo's
verdict "changed or not" must be the separate renders' hash comparison.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsgit.errors import UserError
from opsgit.graph import Graph
from opsgit.render.artefacts import stable_json
from opsgit.render.build import Draft
from opsgit.render.finish import finish, same_rendering
from opsgit.render.graph import EnvironmentRenderer
from opsgit.render.jinja import make_environment
from opsgit.render.memo import InstanceMemo, freeze
from opsgit.repo import load_repo
from tests.conftest import copy_example, write_tree

# On both commits: a module nested in another, a template a module imports, a template an
# env.yaml value includes, and an instance whose resource depends on another instance's block.
SETUP = {
    "modules/dns/module.yaml": """\
variables:
  zone: {type: string}
---
{% import "tags.j2" as tags %}
resources:
  aws_route53_record.ns:
    zone_id: "{{ var.zone }}"
    name: ns
    type: NS
    ttl: 300
    records: [ns1.example.internal]
    tags: {Owner: "{{ tags.owner() }}"}
outputs:
  name: ${aws_route53_record.ns.name}
""",
    "modules/monitor/module.yaml": """\
variables:
  targets: {type: any}
  banner: {type: string, default: ""}
---
resources:
  consul_keys.monitor:
    prefix: monitor/{{ environment.name }}
    keys:
      targets: "{{ var.targets }}"
      banner: "{{ var.banner }}"
""",
    "modules/pool/module.yaml": """\
variables:
  size: {type: number}
---
resources:
  null_resource.members:
    count: {{ var.size }}
    triggers: {size: "{{ var.size }}"}
outputs:
  members: ${null_resource.members[*].id}
""",
    "templates/tags.j2": '{% macro owner() %}team-ops{% endmacro %}\n',
    "templates/motd.txt": "welcome",
}


def prepare(root: Path) -> None:
    write_tree(root, SETUP)
    replace(root / "modules/network/module.yaml", "outputs:\n", "modules:\n  dns:\n    source: dns\n"
            "    inputs: {zone: \"${aws_route53_zone.internal.zone_id}\"}\noutputs:\n")
    replace(root / "environments/dev/env.yaml", "roles: [", "  monitor:\n    source: monitor\n    inputs:\n"
            "      targets: ${module.web-east.addresses}\n      banner: \"{% include 'motd.txt' %}\"\n"
            "  pool:\n    source: pool\n    inputs: {size: 0}\n"
            "  watch:\n    source: monitor\n    inputs: {targets: \"${module.pool.members}\"}\nroles: [")


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def edit(relative: str, old: str, new: str) -> Callable[[Path], None]:
    return lambda root: replace(root / relative, old, new)


ALL = {"dev", "staging", "prod"}
CASES: dict[str, tuple[Callable[[Path], None], set[str]]] = {
    "a module default some environments take": (edit("modules/redis/module.yaml", "default: t3.small",
                                                     "default: t3.medium"), {"dev", "staging"}),
    "a comment in a module": (edit("modules/webapp/module.yaml", "resources:", "# the app\nresources:"), set()),
    "a nested module, under an unchanged one": (edit("modules/dns/module.yaml", "ttl: 300", "ttl: 600"), ALL),
    "a template a nested module imports": (edit("templates/tags.j2", "team-ops", "team-platform"), ALL),
    "a template nothing reads": (lambda root: write_tree(root, {"templates/unused.j2": "x"}), set()),
    "a template an env.yaml value includes": (edit("templates/motd.txt", "welcome", "hello"), {"dev"}),
    "the instances of a block another instance depends on": (
        edit("environments/dev/env.yaml", "count: 1", "count: 2"), {"dev"}),
    "an integer input becoming a float": (edit("environments/dev/env.yaml", "nodes_green: 0", "nodes_green: 0.0"),
                                          {"dev"}),
    "inputs written in another order": (lambda root: _swap_inputs(root), set()),
    "a block becoming counted": (edit("modules/network/module.yaml", "  aws_security_group.allow_all:\n",
                                      "  aws_security_group.allow_all:\n    count: 1\n"), ALL),
    "an output other instances read, removed": (
        edit("modules/network/module.yaml", "  zone_name: ${aws_route53_zone.internal.name}\n", ""), ALL),
    # the pool's draft has no resources either way; only its empty block, which the watch reads, is gone
    "a block without instances that another instance reads, gone": (
        lambda root: (replace(root / "modules/pool/module.yaml", "  null_resource.members:", "{% if var.size %}\n"
                              "  null_resource.members:"),
                      replace(root / "modules/pool/module.yaml", "outputs:", "{% endif %}\noutputs:")), {"dev"}),
    "an environment's own output": (edit("environments/dev/env.yaml", "  redis_address: ${module.redis.redis_address}",
                                         "  redis_address: ${module.web-east.hostname}"), {"dev"}),
    "a default no environment takes": (edit("modules/webapp/module.yaml", "count: {type: number, default: 1}",
                                            "count: {type: number, default: 2}"), set()),
    "an instance moved to an identical module": (
        lambda root: (shutil.copytree(root / "modules/redis", root / "modules/cache"),
                      replace(root / "environments/dev/env.yaml", "source: redis", "source: cache")), set()),
}


def _swap_inputs(root: Path) -> None:
    replace(root / "environments/dev/env.yaml", "      nodes_blue: 1\n      ami_green:", "      ami_green:")
    replace(root / "environments/dev/env.yaml", "      nodes_green: 0\n", "      nodes_green: 0\n      nodes_blue: 1\n")


def rendered(value: Graph | str, *, sources: bool = True) -> bytes:
    return value.encode() if isinstance(value, str) else stable_json(value.to_json(sources=sources))


def draft_or_error(renderer: EnvironmentRenderer, env: str, memo: InstanceMemo | None) -> Draft | str:
    try:
        return renderer.draft(env, memo)
    except UserError as error:
        return f"unrenderable: {error}"


def finished(draft: Draft | str) -> Graph | str:
    if isinstance(draft, str):
        return draft
    try:
        return finish(draft)
    except UserError as error:
        return f"unrenderable: {error}"


def renderer(root: Path) -> EnvironmentRenderer:
    repo = load_repo(root)
    return EnvironmentRenderer(repo, make_environment(root))


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_memo_render_is_the_separate_renders(tmp_path: Path, case: str) -> None:
    change, expected = CASES[case]
    base = copy_example(tmp_path / "base")
    prepare(base)
    head = tmp_path / "head"
    shutil.copytree(base, head)
    change(head)
    sides = renderer(base), renderer(head)
    changed = set()
    for env in sorted(ALL):
        separate = [finished(draft_or_error(side, env, None)) for side in sides]
        memo = InstanceMemo()
        drafts = [draft_or_error(side, env, memo) for side in sides]
        assert [rendered(finished(d)) for d in drafts] == [rendered(g) for g in separate], env
        differs = rendered(separate[0], sources=False) != rendered(separate[1], sources=False)
        if isinstance(drafts[0], Draft) and isinstance(drafts[1], Draft):
            assert same_rendering(*drafts) is not differs, env
            assert memo.instances, "the base side recorded its instances"
        if differs:
            changed.add(env)
    assert changed == expected


def test_the_head_side_replays_what_did_not_change(tmp_path: Path) -> None:
    base = copy_example(tmp_path / "base")
    head = tmp_path / "head"
    shutil.copytree(base, head)
    replace(head / "modules/redis/module.yaml", "default: t3.small", "default: t3.medium")
    sides = renderer(base), renderer(head)
    memo = InstanceMemo()
    drafts = sides[0].draft("dev", memo), sides[1].draft("dev", memo)
    before, after = (draft.build.resources for draft in drafts)
    # every instance but redis was replayed: their resources are the very same objects
    assert {a for a in before if before[a] is after.get(a)} == {a for a in before if not a.startswith("module.redis.")}
    assert not same_rendering(*drafts)


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(-3, 3, allow_nan=False),
                    st.sampled_from(["", "1", "true", "a"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3), max_leaves=8)


@given(VALUES, VALUES)
def test_freeze_tells_apart_every_two_values_that_render_differently(first: object, second: object) -> None:
    # repr tells apart 1, 1.0 and True, and mapping order: what Jinja would render differently
    if freeze(first) == freeze(second):
        assert repr(first) == repr(second)
    if repr(first) == repr(second):
        assert freeze(first) == freeze(second)
