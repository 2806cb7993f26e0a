"""Property: random repositories and KV data never crash render, plan or template — every
failure is a clear user error (exit 1, one line), never a bug (exit 3)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsgit.error_handler import run_guarded
from opsgit.errors import UserError
from opsgit.testing import render_host_template

NAMES = st.sampled_from(["a", "b", "node", "web", "x-1", "Bad Name", "", "__class__"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False, width=16),
                    st.text(max_size=12),
                    st.sampled_from(["{{ var.a }}", "{{ var.nope }}", "${null_resource.a.id}", "${module.m.out}",
                                     "${count.index}", "{{ 1/0 }}", "{{ ''.__class__ }}", "${", "{{", "{% if %}",
                                     "${null_resource.node[*].id}", "{{ environment.name }}"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(NAMES, inner, max_size=3)), max_leaves=8)
RESOURCE = st.fixed_dictionaries({}, optional={
    "count": st.one_of(st.integers(-1, 3), st.just("{{ var.a }}"), st.text(max_size=3)),
    "triggers": st.dictionaries(NAMES, VALUES, max_size=3),
    "depends_on": st.lists(st.sampled_from(["null_resource.a", "null_resource.zz", "module.m"]), max_size=2),
    "lifecycle": st.dictionaries(st.sampled_from(["create_before_destroy", "prevent_destroy", "bogus"]),
                                 st.booleans(), max_size=2),
})
MODULE = st.fixed_dictionaries({
    "variables": st.dictionaries(st.sampled_from(["a", "b"]), st.fixed_dictionaries(
        {"type": st.sampled_from(["string", "number", "list", "map", "bool", "any", "weird"])},
        optional={"default": SCALARS}), max_size=2),
    "resources": st.dictionaries(st.sampled_from(["null_resource.a", "null_resource.node", "bogus.x", "nodot"]),
                                 RESOURCE, max_size=3),
}, optional={"outputs": st.dictionaries(st.sampled_from(["out", "ids"]), VALUES, max_size=2)})
ENV = st.fixed_dictionaries({
    "modules": st.dictionaries(st.sampled_from(["m", "n"]), st.fixed_dictionaries(
        {"source": st.sampled_from(["app", "missing"])},
        optional={"inputs": st.dictionaries(st.sampled_from(["a", "b", "c"]), VALUES, max_size=2)}), max_size=2),
}, optional={"variables": st.dictionaries(NAMES, VALUES, max_size=2),
             "outputs": st.dictionaries(NAMES, VALUES, max_size=2),
             "sensitive": st.lists(NAMES, max_size=1)})


def module_text(module: dict[str, Any]) -> str:
    header = yaml.safe_dump({"variables": module["variables"]}, sort_keys=False)
    body = {k: v for k, v in module.items() if k != "variables"}
    return header + "---\n" + yaml.safe_dump(body, sort_keys=False)


def run_command(root: Path, command: Any) -> int:
    previous = os.environ.get("OPSGIT_ROOT")
    os.environ["OPSGIT_ROOT"] = str(root)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as errors:
            code = run_guarded(command)
        assert code != 3, errors.getvalue()
        if code == 1:
            assert len(errors.getvalue().strip().splitlines()) == 1, errors.getvalue()
        return code
    finally:
        if previous is None:
            os.environ.pop("OPSGIT_ROOT", None)
        else:
            os.environ["OPSGIT_ROOT"] = previous


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(env=ENV, module=MODULE, raw=st.one_of(st.none(), st.text(max_size=40)))
def test_random_repositories_render_and_plan_or_fail_clearly(env: dict[str, Any], module: dict[str, Any],
                                                           raw: str | None) -> None:
    from opsgit.commands.plan import plan
    from opsgit.commands.render import render

    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as scratch:
        root = Path(scratch)
        (root / "environments/t").mkdir(parents=True)
        (root / "modules/app").mkdir(parents=True)
        (root / "environments/t/env.yaml").write_text(raw if raw is not None else yaml.safe_dump(env))
        (root / "modules/app/module.yaml").write_text(module_text(module))
        run_command(root, lambda: render(root))
        run_command(root, lambda: plan("t"))


@settings(max_examples=150, deadline=None)
@given(template=st.lists(st.sampled_from([
    "{{ key('a') }}", "{{ key_or_default('b', 'x') }}", "{{ tree('p') | map(attribute='value') | list }}",
    "{% for s in service('web') %}{{ s.address }}:{{ s.port }}{% endfor %}", "{{ ls('p') | length }}",
    "{{ key('a') | parse_json }}", "{{ key('a') | base64_decode }}", "{{ nodes() | to_json }}", "{{ x }}",
    "{{ key('a') | int + 1 }}", "{% if key_exists('a') %}y{% endif %}", "{{", "{% for %}", "}}", "plain",
    "{{ services() | to_yaml }}", "{{ env('HOME', '') | length > 0 }}", "{{ ''.__class__ }}"]), max_size=5),
    keys=st.dictionaries(st.sampled_from(["a", "b", "p/x", "p/y/z", "p/"]), st.text(max_size=10), max_size=4),
    instances=st.lists(st.fixed_dictionaries({"node": st.text(min_size=1, max_size=4),
                                              "address": st.text(max_size=8), "port": st.integers(0, 65535)}),
                       max_size=3))
def test_random_templates_and_kv_data_render_or_fail_clearly(template: list[str], keys: dict[str, str],
                                                            instances: list[dict[str, Any]]) -> None:
    try:
        text = render_host_template("\n".join(template), keys=keys, services={"web": instances})
    except UserError as error:
        assert "\n" not in str(error).strip()
    except KeyError as missing:
        assert "the template reads key" in str(missing)
    else:
        assert isinstance(text, str)
        json.dumps(text)
