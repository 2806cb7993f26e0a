"""Plan text as Terraform prints it (the shape of Terraform 1.11's output in
../shared/reference/terraform-packer.md, section 2): golden files, without and with colour, for
nested maps and lists diffed member by member, a multi-line string as a heredoc diff, a
replacement with `# forces replacement`, a destroy, natural address order and output changes;
and the same text as a pull request's ```diff block.

To accept a deliberate change of layout: OPSGIT_UPDATE_GOLDEN=1 pytest tests/engine/test_plan_text.py
(then read the diff of tests/fixtures/plan_text/ before committing it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from opsgit.engine.plan import Plan, ResourceChange
from opsgit.engine.plan_text import format_plan
from opsgit.engine.resolve import UNKNOWN
from opsgit.gitops.comment import diff_markup

GOLDEN = Path(__file__).parents[1] / "fixtures" / "plan_text"

CHANGES = (
    ResourceChange("module.web.aws_instance.web[10]", "aws_instance", "aws", ("create",), None,
                   {"ami": "ami-1", "id": UNKNOWN, "tags": {"Name": "web-10", "Role": "web"},
                    "vpc_security_group_ids": ["sg-1"]}),
    ResourceChange("module.web.aws_instance.web[2]", "aws_instance", "aws", ("update",),
                   {"id": "i-2", "ami": "ami-1", "tags": {"Name": "web-2", "Role": "web", "Old": "x"},
                    "volumes": ["a", "b", "c"]},
                   {"id": "i-2", "ami": "ami-1", "tags": {"Name": "web-2", "Role": "api"},
                    "volumes": ["a", "B", "c", "d"]}),
    ResourceChange("module.app.local_file.config", "local_file", "local", ("delete", "create"),
                   {"id": "abc", "filename": "a.conf", "content": "one\ntwo\nthree\n"},
                   {"id": UNKNOWN, "filename": "a.conf", "content": "one\n2\nthree\n"}, ("content",),
                   "replace_because_cannot_update"),
    ResourceChange("module.network.aws_security_group.allow_all", "aws_security_group", "aws", ("update",),
                   {"id": "sg-1", "ingress": [{"cidr_blocks": ["0.0.0.0/0"], "from_port": 0, "protocol": "-1",
                                               "to_port": 0}]},
                   {"id": "sg-1", "ingress": [{"cidr_blocks": ["10.0.0.0/8"], "from_port": 0, "protocol": "-1",
                                               "to_port": 0}]}),
    ResourceChange("null_resource.gone", "null_resource", "null", ("delete",), {"id": "1", "triggers": {"a": "b"}},
                   None),
)
OUTPUTS = {
    "ids": {"actions": ["update"], "before": ["i-1", "i-2"], "after": ["i-1", None], "after_unknown": [False, True],
            "sensitive": False},
    "token": {"actions": ["create"], "before": None, "after": None, "after_unknown": False, "sensitive": True},
    "url": {"actions": ["create"], "before": None, "after": "https://x", "after_unknown": False, "sensitive": False},
}
PLAN = Plan(env="t", mode="normal", lineage="l", serial=1, input_hash="h", resource_changes=CHANGES,
            output_changes=OUTPUTS)


@pytest.mark.parametrize(("name", "text"), [
    ("plan.txt", lambda: format_plan(PLAN)),
    ("plan.colour.txt", lambda: format_plan(PLAN, colour=True)),
    ("plan.diff.txt", lambda: diff_markup(format_plan(PLAN))),
])
def test_plan_text_matches_its_golden_file(name: str, text: object) -> None:
    produced = text()  # type: ignore[operator]
    golden = GOLDEN / name
    if os.environ.get("OPSGIT_UPDATE_GOLDEN"):
        golden.write_text(produced + "\n")
    assert produced + "\n" == golden.read_text()


def test_the_shape_terraform_prints() -> None:
    text = format_plan(PLAN)
    lines = text.splitlines()
    # addresses in natural order: web[2] before web[10]
    assert text.index("module.web.aws_instance.web[2]") < text.index("module.web.aws_instance.web[10]")
    assert "-/+ resource \"local_file\" \"config\" {" in lines
    assert "      ~ content  = <<-EOT  # forces replacement" in lines and "          - two" in lines
    assert "          ~ Role = \"web\" -> \"api\"" in lines and "            # (1 unchanged element hidden)" in lines
    assert "          - Old  = \"x\" -> null" in lines and "          + \"d\"," in lines
    assert "  + token = (sensitive value)" in lines
    assert lines.index("Changes to Outputs:") > lines.index("Plan: 2 to add, 2 to change, 2 to destroy.")
    assert "\033[" not in text and "\033[32m+\033[0m" in format_plan(PLAN, colour=True)


def test_colour_only_on_a_terminal_and_never_with_no_color(tmp_path: Path) -> None:
    import io

    from opsgit.output import use_colour

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert not use_colour(io.StringIO())
    old = os.environ.pop("NO_COLOR", None)
    try:
        assert use_colour(Terminal())
        os.environ["NO_COLOR"] = "1"
        assert not use_colour(Terminal())
    finally:
        os.environ.pop("NO_COLOR", None)
        if old is not None:
            os.environ["NO_COLOR"] = old
