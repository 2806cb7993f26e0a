"""What a tool that knows only Terraform's JSON plan format sees in one of opsgit's.

`check` validates a document against the format's schema (tests/fixtures/terraform-plan.schema.json,
written from Terraform's documentation) and walks it the way plan readers do: checkov and
tf-summarize take the resources from `planned_values.root_module` and its nested `child_modules`,
and the changes from `resource_changes`. `run_opsgit` checks every `plan --json` and `show --json`
the test suite makes."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

SCHEMA = Path(__file__).with_name("fixtures") / "terraform-plan.schema.json"


@functools.cache
def _validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def planned_resources(document: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every resource in `planned_values`, child modules included (checkov's walk)."""
    def walk(module: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        yield from module.get("resources", [])
        for child in module.get("child_modules", []):
            yield from walk(child)
    yield from walk(document["planned_values"]["root_module"])


def check(document: Mapping[str, Any]) -> None:
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "; ".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5])
    changes = {c["address"]: c for c in document["resource_changes"]}
    planned = {r["address"]: r for r in planned_resources(document)}
    remaining = {a for a, c in changes.items() if c["change"]["actions"] != ["delete"]}
    assert set(planned) == remaining, (sorted(set(planned) ^ remaining))
    for address, resource in planned.items():
        change = changes[address]
        assert resource["type"] == change["type"] and resource["provider_name"] == change["provider_name"]
        prefix = f"{change['module_address']}." if "module_address" in change else ""
        index = change.get("index")
        name = f"{change['type']}.{change['name']}" if change["mode"] == "managed" else \
            f"data.{change['type']}.{change['name']}"
        suffix = "" if index is None else f"[{index}]" if isinstance(index, int) else f'["{index}"]'
        assert address == f"{prefix}{name}{suffix}", address
        after = change["change"]["after"] or {}
        unknown = change["change"]["after_unknown"]
        for key in resource["values"]:
            assert key in after, (address, key)
        if isinstance(unknown, dict):
            for key, flag in unknown.items():
                if flag is True:
                    assert key not in after, (address, key)  # unknown values are left out, not null
