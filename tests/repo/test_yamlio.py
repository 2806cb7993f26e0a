"""The fast YAML path gives what PyYAML's general constructor gives, values and errors alike.

`yamlio.FastLoader` builds plain documents straight from libyaml's nodes and remembers the type of
each plain scalar's text; anything else goes through PyYAML's own constructor. Each document here
is loaded both ways and must come out the same: same values with the same types, the same object
for an alias, and the same error for duplicate or unhashable keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from opsgit.errors import ConfigError
from opsgit.repo import yamlio
from tests.conftest import BROKEN, REPO_ROOT


class GeneralLoader(yamlio.FastLoader):
    """The same schema through PyYAML's general constructor and resolver."""

    resolve = yaml.resolver.BaseResolver.resolve
    construct_document = yaml.constructor.BaseConstructor.construct_document


def load(text: str, loader: type[yaml.CSafeLoader]) -> tuple[str, Any]:
    try:
        return "value", typed(yaml.load(text, Loader=loader))
    except yaml.YAMLError as error:
        return "error", str(error)


def typed(value: Any, seen: dict[int, int] | None = None) -> Any:
    """The value with every scalar's type spelled out (1, 1.0 and True compare equal in Python),
    and every map or list met again (an alias, a recursive structure) named by when it was first
    met — so that an alias bomb is not expanded, and both loaders must share the same objects."""
    seen = {} if seen is None else seen
    if isinstance(value, (dict, list)):
        if id(value) in seen:
            return ("again", seen[id(value)])
        seen[id(value)] = len(seen)
        if isinstance(value, dict):
            return [(typed(k, seen), typed(v, seen)) for k, v in value.items()]
        return [typed(v, seen) for v in value]
    return (type(value).__name__, repr(value))


DOCUMENTS = [
    "a: 1\nb: 1.0\nc: true\nd: ~\ne: '1'\nf: 0o17\ng: 0x1f\nh: .inf\ni: no\nj: 1:30\nk: 0644\n",
    "base: &b {x: 1, y: [1, 2]}\nuse: *b\nlist: [*b, *b]\n",
    "a: 1\na: 2\n",
    "? [1, 2]\n: x\n",
    "? {a: 1}\n: x\n",
    "base: &b {x: 1}\nmerged:\n  !!merge <<: *b\n  y: 2\n",
    "<<: {x: 1}\n",
    "a: !!str 1\nb: !!int '3'\nc: !!float '2'\nd: !!bool 'true'\n",
    "t: !custom 1\n",
    "d: 2001-12-14\n",
    "- 1\n- [a, {b: c}]\n- {}\n- []\n",
    "",
    "just text\n",
    "k: [1, 2\n",
]


@pytest.mark.parametrize("text", DOCUMENTS)
def test_documents_load_alike(text: str) -> None:
    assert load(text, yamlio.FastLoader) == load(text, GeneralLoader)


# What PyYAML would build and nothing downstream can use (JSON has no bytes, sets, dates or values
# that contain themselves): refused while parsing, naming the line.
REFUSED = ["self: &s [1, *s]\n", "m: &m {k: *m}\n", "s: !!set {a, b}\n", "o: !!omap [a: 1, b: 2]\n",
           "b: !!binary aGk=\n", "t: !!timestamp 2001-12-14\n", "p: !!pairs [a: 1]\n",
           "x: !!python/tuple [1]\n"]


@pytest.mark.parametrize("text", REFUSED)
def test_values_json_has_not_are_refused_with_their_line(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        yamlio.parse("ok: 1\n" + text, "f.yaml")
    assert caught.value.line == 2
    assert "unsupported value type" in caught.value.message or "recursive alias" in caught.value.message
    assert caught.value.hint


def test_every_yaml_file_of_the_example_and_the_fixtures_loads_alike() -> None:
    files = [p for part in ("environments", "roles", "modules", ".github") for p in (REPO_ROOT / part).rglob("*.y*ml")]
    files += [p for p in BROKEN.rglob("*.y*ml") if p.is_file()]
    assert len(files) > 40
    for path in files:
        case = BROKEN / path.relative_to(BROKEN).parts[0] if BROKEN in path.parents else None
        expected = (case / "expected-error").read_text() if case is not None else ""
        if any(refused in expected for refused in ("unsupported value type", "recursive alias", "not UTF-8",
                                                   "NUL byte", "nest more than")):
            continue  # a broken case whose YAML opsgit refuses on purpose
        text = path.read_text()
        body = text.split("\n---\n", 1)[0] if path.name == "module.yaml" else text  # the body is Jinja
        assert load(body, yamlio.FastLoader) == load(body, GeneralLoader), path


def test_an_alias_is_one_object_on_the_fast_path() -> None:
    data = yamlio.parse("base: &b {x: 1}\nuse: *b\n", "f.yaml")
    assert data["use"] is data["base"]


@pytest.mark.parametrize("text", ["b: !!int abc\n", "b: !!float abc\n", "b: !!bool abc\n"])
def test_a_value_that_is_not_of_its_explicit_type_is_a_clear_error(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        yamlio.parse(text, "f.yaml")
    assert caught.value.line == 1 and "is not a valid !!" in caught.value.message


def test_duplicate_keys_are_refused_with_the_line() -> None:
    with pytest.raises(ConfigError) as caught:
        yamlio.parse("a: 1\nb: 2\nb: 3\n", "f.yaml")
    assert caught.value.line == 3 and "duplicate key \"b\"" in caught.value.message


KEYS = st.sampled_from(["a", "b", "1", "true", "null", "0x1", "1.5", "no", "x y"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=False),
                    st.text(max_size=8), KEYS)
TREES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
                     max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(TREES, st.booleans())
def test_random_documents_load_alike(tree: Any, flow: bool) -> None:
    text = yaml.safe_dump(tree, default_flow_style=flow, allow_unicode=True)
    assert load(text, yamlio.FastLoader) == load(text, GeneralLoader)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a: ", "- ", "&x ", "*x", "[", "]", "{", "}", ", ", "\n", "  ", "1", "b",
                                 "'q'", "!!str ", "? ", ": ", "~", "true", "# c"]), max_size=16))
def test_random_fragments_load_alike(parts: list[str]) -> None:
    text = "".join(parts)
    fast, general = load(text, yamlio.FastLoader), load(text, GeneralLoader)
    if general[0] == "value" and contains_itself(yaml.load(text, Loader=GeneralLoader)):
        # PyYAML builds a value that contains itself (`&x {a: *x}`); opsgit refuses it, since
        # everything after parsing walks values recursively
        assert fast[0] == "error" and "recursive alias" in fast[1], fast
        return
    assert fast == general


def contains_itself(value: Any, inside: frozenset[int] = frozenset()) -> bool:
    if not isinstance(value, dict | list):
        return False
    if id(value) in inside:
        return True
    children = list(value.values()) + list(value.keys()) if isinstance(value, dict) else value
    return any(contains_itself(child, inside | {id(value)}) for child in children)


def test_bodies_rendered_by_the_example_load_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from opsgit.render.pipeline import render_selection
    from opsgit.repo import load_repo
    from tests.conftest import copy_example

    parsed: list[str] = []
    parse = yamlio.parse

    def recording(text: str, file: str, **kwargs: Any) -> Any:
        parsed.append(text)
        return parse(text, file, **kwargs)

    monkeypatch.setattr(yamlio, "parse", recording)
    render_selection(load_repo(copy_example(tmp_path / "ops")), workers=1)
    assert len(parsed) > 10
    for text in parsed:
        assert load(text, yamlio.FastLoader) == load(text, GeneralLoader)
