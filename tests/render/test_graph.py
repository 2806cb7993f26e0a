"""Environment graphs: addresses, references, dependencies, count, nested modules, outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opsgit.errors import CycleError, RenderError
from opsgit.graph import Graph, topological_order
from opsgit.render.graph import GraphRenderer
from opsgit.render.jinja import make_environment
from opsgit.repo import load_repo
from tests.conftest import REPO_ROOT, write_tree


def render_env(root: Path, env: str) -> Graph:
    repo = load_repo(root)
    graph, _ = GraphRenderer(repo, make_environment(root)).render(repo.environments[env])
    return graph


@pytest.fixture(scope="module")
def dev() -> Graph:
    return render_env(REPO_ROOT, "dev")


def test_dev_has_the_example_resources_at_full_addresses(dev: Graph) -> None:
    assert set(dev.resources) == {
        "module.network.aws_security_group.allow_all",
        "module.network.aws_route53_zone.internal",
        "module.binstore.aws_s3_bucket.artefacts",
        "module.web-east.aws_route53_record.web",
        "module.web-west.aws_route53_record.web",
        "module.redis.aws_instance.redis",
        "module.redis.consul_service.redis",
        "module.binstore.aws_launch_configuration.blue",
        "module.binstore.aws_launch_configuration.green",
        "module.binstore.aws_autoscaling_group.blue",
        "module.binstore.aws_autoscaling_group.green",
        "module.binstore.consul_keys.config",
        "module.web-east.aws_security_group.web",
        "module.web-east.aws_instance.web[0]",
        "module.web-east.consul_keys.web",
        "module.web-west.aws_security_group.web",
        "module.web-west.aws_instance.web[0]",
        "module.web-west.consul_keys.web",
    }


def test_blue_green_parameters_shape_the_groups(dev: Graph) -> None:
    blue = dev.resources["module.binstore.aws_autoscaling_group.blue"].attributes
    green = dev.resources["module.binstore.aws_autoscaling_group.green"].attributes
    assert (blue["min_size"], blue["max_size"], green["min_size"]) == (1, 1, 0)
    assert blue["launch_configuration"] == "${module.binstore.aws_launch_configuration.blue.name}"
    launch = dev.resources["module.binstore.aws_launch_configuration.blue"]
    assert launch.attributes["image_id"] == "ami-12c6146b"  # from environments/dev/images.yaml
    assert launch.lifecycle == {"create_before_destroy": True}


def test_references_become_dependency_edges(dev: Graph) -> None:
    deps = {a: set(r.dependencies) for a, r in dev.resources.items()}
    assert deps["module.binstore.aws_autoscaling_group.blue"] == {"module.binstore.aws_launch_configuration.blue"}
    assert deps["module.redis.aws_instance.redis"] == {"module.network.aws_security_group.allow_all"}
    # web reads the redis output through its `dburl` input
    assert deps["module.web-west.aws_instance.web[0]"] == {
        "module.web-west.aws_security_group.web", "module.redis.aws_instance.redis"}
    # module outputs feed other modules: the record's zone comes from network, its addresses from web
    assert deps["module.web-east.aws_route53_record.web"] == {
        "module.network.aws_route53_zone.internal", "module.web-east.aws_instance.web[0]"}
    order = dev.order()
    for address, needed in deps.items():
        assert all(order.index(dep) < order.index(address) for dep in needed)


def test_module_outputs_are_inlined_into_their_consumers(dev: Graph) -> None:
    keys = dev.resources["module.binstore.consul_keys.config"].attributes["keys"]
    assert keys["redis_addr"] == "${module.redis.aws_instance.redis.private_ip}:6379"
    assert dev.outputs["web_east_addresses"] == "${module.web-east.aws_instance.web[*].private_ip}"
    assert dev.outputs["binstore_groups"] == ["${module.binstore.aws_autoscaling_group.blue.name}",
                                              "${module.binstore.aws_autoscaling_group.green.name}"]


def test_count_expands_instances_in_prod() -> None:
    prod = render_env(REPO_ROOT, "prod")
    east = [a for a in prod.resources if a.startswith("module.web-east.aws_instance.web[")]
    assert east == [f"module.web-east.aws_instance.web[{i}]" for i in range(4)]
    assert prod.resources["module.web-east.aws_instance.web[3]"].attributes["tags"]["Name"] == "prod-web-east-3"


def test_graph_round_trips_through_json(dev: Graph) -> None:
    again = Graph.from_json(json.loads(json.dumps(dev.to_json())))
    assert again == dev


SMALL_ENV = """\
providers: {aws: {region: us-east-1}}
modules:
  outer:
    source: outer
    inputs: {size: 3}
outputs:
  names: ${module.outer.names}
  inner_id: ${module.outer.inner_id}
"""
OUTER = """\
variables:
  size: {type: number}
---
modules:
  inner:
    source: inner
    inputs:
      label: outer-${aws_instance.r[0].id}
resources:
  aws_instance.r:
    count: {{ var.size }}
    ami: ami-1
  aws_instance.dep:
    count: {{ var.size }}
    user_data: ${aws_instance.r[count.index].id}
    tags: {Name: "dep-${count.index}"}
  aws_instance.after:
    ami: ${module.inner.id}
    depends_on: ["aws_instance.dep[0]", module.inner]
  aws_instance.keyed:
    for_each: {a: one, b: two}
    tags: {Key: "${each.key}", Value: "${each.value}"}
outputs:
  names: ${aws_instance.dep[*].id}
  inner_id: ${module.inner.id}
"""
INNER = """\
variables:
  label: {type: string}
---
resources:
  aws_instance.x:
    tags: {Label: "{{ var.label }}"}
outputs:
  id: ${aws_instance.x.id}
"""


def small_repo(root: Path, outer: str = OUTER, env: str = SMALL_ENV) -> Path:
    return write_tree(root, {"environments/dev/env.yaml": env, "modules/outer/module.yaml": outer,
                             "modules/inner/module.yaml": INNER})


def test_nested_modules_count_and_for_each(tmp_path: Path) -> None:
    graph = render_env(small_repo(tmp_path), "dev")
    r = graph.resources
    assert r["module.outer.aws_instance.dep[2]"].attributes["user_data"] == "${module.outer.aws_instance.r[2].id}"
    assert r["module.outer.aws_instance.dep[2]"].dependencies == ("module.outer.aws_instance.r[2]",)
    assert r["module.outer.aws_instance.dep[1]"].attributes["tags"] == {"Name": "dep-1"}
    inner = r["module.outer.module.inner.aws_instance.x"]
    # an input carrying a reference keeps the caller's scope: never re-prefixed by the inner module
    assert inner.attributes["tags"]["Label"] == "outer-${module.outer.aws_instance.r[0].id}"
    assert inner.dependencies == ("module.outer.aws_instance.r[0]",)
    after = r["module.outer.aws_instance.after"]
    assert after.attributes["ami"] == "${module.outer.module.inner.aws_instance.x.id}"
    assert set(after.dependencies) == {"module.outer.aws_instance.dep[0]", "module.outer.module.inner.aws_instance.x"}
    assert r['module.outer.aws_instance.keyed["b"]'].attributes["tags"] == {"Key": "b", "Value": "two"}
    assert graph.outputs == {"names": "${module.outer.aws_instance.dep[*].id}",
                             "inner_id": "${module.outer.module.inner.aws_instance.x.id}"}


def test_index_beyond_count_is_a_missing_instance(tmp_path: Path) -> None:
    outer = OUTER.replace("${aws_instance.r[0].id}", "${aws_instance.r[7].id}")
    with pytest.raises(RenderError, match=r"refers to missing instance module.outer.aws_instance.r\[7\]"):
        render_env(small_repo(tmp_path, outer), "dev")


def test_a_cycle_is_named_with_its_path(tmp_path: Path) -> None:
    outer = OUTER.replace("outputs:\n", "  aws_instance.loop_a:\n    ami: ${aws_instance.loop_b.id}\n"
                          "  aws_instance.loop_b:\n    ami: ${aws_instance.loop_a.id}\noutputs:\n", 1)
    with pytest.raises(CycleError) as caught:
        render_env(small_repo(tmp_path, outer), "dev")
    assert "module.outer.aws_instance.loop_a -> module.outer.aws_instance.loop_b -> " \
           "module.outer.aws_instance.loop_a" in str(caught.value)
    assert "modules/outer/module.yaml:" in str(caught.value)


def test_sibling_modules_render_after_the_siblings_they_read(tmp_path: Path) -> None:
    env = """\
providers: {aws: {}}
modules:
  consumer:
    source: inner
    inputs: {label: "${module.producer.id}"}
  producer:
    source: inner
    inputs: {label: first}
"""
    write_tree(tmp_path, {"environments/dev/env.yaml": env, "modules/inner/module.yaml": INNER})
    graph = render_env(tmp_path, "dev")
    consumer = graph.resources["module.consumer.aws_instance.x"]
    assert consumer.attributes["tags"]["Label"] == "${module.producer.aws_instance.x.id}"
    assert consumer.dependencies == ("module.producer.aws_instance.x",)


def test_modules_reading_each_other_are_a_cycle(tmp_path: Path) -> None:
    env = """\
providers: {aws: {}}
modules:
  a: {source: inner, inputs: {label: "${module.b.id}"}}
  b: {source: inner, inputs: {label: "${module.a.id}"}}
"""
    write_tree(tmp_path, {"environments/dev/env.yaml": env, "modules/inner/module.yaml": INNER})
    with pytest.raises(CycleError, match="a -> b -> a"):
        render_env(tmp_path, "dev")


def test_topological_order_is_dependencies_first() -> None:
    edges: dict[str, tuple[str, ...]] = {"c": ("b",), "b": ("a",), "a": (), "d": ("a", "c")}
    order = topological_order(edges)
    assert order.index("a") < order.index("b") < order.index("c") < order.index("d")


def attributes_of(graph: Graph) -> dict[str, Any]:
    return {a: r.attributes for a, r in graph.resources.items()}


HOSTILE_VALUES = ['say "hi"', "back\\slash", "it's", "key: value # not a comment", "two\nlines", "[not, a, list]",
                  "*not-an-alias", " padded ", "tab\there", "{{ not jinja }}", "日本語"]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_a_value_arrives_exactly_under_every_quoting_a_module_may_use(tmp_path: Path, value: str) -> None:
    """Written double-quoted, single-quoted, plain, inside a longer string, in a block scalar or
    as a key, a value with YAML's special characters renders as itself; to_json stays structure."""
    module = ("variables:\n  v: {type: string}\n  zones: {type: list, default: [a, b]}\n---\nresources:\n"
              "  null_resource.r:\n    triggers:\n"
              "      double: \"{{ var.v }}\"\n      single: '{{ var.v }}'\n      plain: {{ var.v }}\n"
              "      inside: \"<{{ var.v }}>{{ var.v }}\"\n      block: |\n        line {{ var.v }}\n"
              "      \"{{ var.v }}\": as-key\n      zones: {{ var.zones | to_json }}\n")
    root = write_tree(tmp_path / "ops", {
        "environments/e/env.yaml": f"variables:\n  v: {json.dumps(value)}\nmodules:\n  m:\n    source: m\n"
                                   "    inputs: {v: \"{{ var.v }}\"}\n",
        "modules/m/module.yaml": module})
    triggers = render_env(root, "e").resources["module.m.null_resource.r"].attributes["triggers"]
    assert triggers == {"double": value, "single": value, "plain": value, "inside": f"<{value}>{value}",
                        "block": f"line {value}\n", value: "as-key", "zones": ["a", "b"]}
