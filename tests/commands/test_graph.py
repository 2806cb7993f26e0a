"""`opsgit graph`: the DOT is read back by Graphviz itself (`dot -Tjson`), not by opsgit: the
example's dependencies as edges (redis feeding webapp), modules as clusters, and a saved plan's
actions as colours; `--svg` draws it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_opsgit, write_tree

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz is installed by `make test`")


def read_dot(text: str) -> dict[str, Any]:
    drawn = subprocess.run(["dot", "-Tjson"], input=text, capture_output=True, text=True, check=True, timeout=60)
    document: dict[str, Any] = json.loads(drawn.stdout)
    return document


def nodes_and_edges(document: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], set[tuple[str, str]]]:
    objects = document["objects"]
    nodes = {o["name"]: o for o in objects if "nodes" not in o and "subgraphs" not in o}
    names = {o["_gvid"]: o["name"] for o in objects}
    edges = {(names[e["tail"]], names[e["head"]]) for e in document.get("edges", [])}
    return nodes, edges


def test_the_examples_graph_as_graphviz_reads_it(example: Path) -> None:
    result = run_opsgit("graph", "--env", "dev", cwd=example)
    assert result.returncode == 0, result.stderr
    document = read_dot(result.stdout)
    nodes, edges = nodes_and_edges(document)
    assert "module.redis.aws_instance.redis" in nodes and "module.web-east.aws_instance.web[0]" in nodes
    # redis feeds the web applications in both regions
    assert ("module.web-east.aws_instance.web[0]", "module.redis.aws_instance.redis") in edges
    assert ("module.web-west.aws_instance.web[0]", "module.redis.aws_instance.redis") in edges
    clusters = {o["label"] for o in document["objects"] if o.get("name", "").startswith("cluster_")}
    assert {"module.binstore", "module.network", "module.redis", "module.web-east", "module.web-west"} <= clusters
    svg = run_opsgit("graph", "--env", "dev", "--svg", cwd=example)
    assert svg.returncode == 0 and svg.stdout.lstrip().startswith("<?xml") and "<svg" in svg.stdout


def test_a_plans_graph_is_coloured_by_action(tmp_path: Path) -> None:
    module = ("resources:\n  null_resource.a: {triggers: {v: \"1\"}}\n"
              "  null_resource.b:\n    triggers: {a: \"${null_resource.a.id}\"}\n")
    root = write_tree(tmp_path / "ops", {"environments/t/env.yaml": "modules:\n  app:\n    source: app\n",
                                         "modules/app/module.yaml": module})
    assert run_opsgit("apply", "--env", "t", "--auto-approve", cwd=root).returncode == 0
    (root / "modules/app/module.yaml").write_text("resources:\n  null_resource.a: {triggers: {v: \"2\"}}\n")
    plan = tmp_path / "t.plan"
    planned = run_opsgit("plan", "--env", "t", "--out", str(plan), cwd=root)
    assert planned.returncode == 0, planned.stderr
    result = run_opsgit("graph", "--env", "t", "--plan", str(plan), cwd=root)
    assert result.returncode == 0, result.stderr
    nodes, edges = nodes_and_edges(read_dot(result.stdout))
    replaced, deleted = nodes["module.app.null_resource.a"], nodes["module.app.null_resource.b"]
    assert replaced["label"] == "-/+ null_resource.a" and deleted["label"] == "- null_resource.b"
    assert deleted["color"] == "#c62828"
    assert ("module.app.null_resource.b", "module.app.null_resource.a") in edges  # b depended on a
    other = run_opsgit("graph", "--env", "prod", "--plan", str(plan), cwd=root)
    assert other.returncode == 1 and "is for environment 't'" in other.stderr
