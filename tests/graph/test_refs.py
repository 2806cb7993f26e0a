import pytest

from opsgit.graph import refs


def test_tokens_of_an_absolute_reference() -> None:
    assert refs.tokens('module.web-east.aws_instance.web[0].tags["Name"]') == [
        "module", "web-east", "aws_instance", "web", 0, "tags", "Name"]


def test_parse_resource_with_index_splat_and_attributes() -> None:
    ref = refs.parse_resource("module.a.module.b.aws_instance.web[2].private_ip")
    assert (ref.modules, ref.type, ref.name, ref.index, ref.attributes) == (
        ("a", "b"), "aws_instance", "web", 2, ("private_ip",))
    assert ref.address == "module.a.module.b.aws_instance.web[2]"
    splat = refs.parse_resource("aws_instance.web[*].id")
    assert splat.splat and splat.index is None and splat.block == "aws_instance.web"
    keyed = refs.parse_resource('aws_instance.web["east"].id')
    assert keyed.address == 'aws_instance.web["east"]'


@pytest.mark.parametrize("bad", ["", "aws_instance.", ".x", "a..b", "aws_instance web", "a[0"])
def test_malformed_references_are_refused(bad: str) -> None:
    with pytest.raises(refs.ReferenceSyntaxError):
        refs.tokens(bad)


def test_escaped_dollar_brace_is_not_a_reference() -> None:
    assert list(refs.find("a ${x.y.z} b $${literal} c")) == ["x.y.z"]
    assert refs.substitute("$${keep} ${x.y}", lambda e: "<" + e + ">") == "$${keep} <x.y>"


def test_whole_recognises_a_lone_reference_only() -> None:
    assert refs.whole("${aws_instance.web.id}") == "aws_instance.web.id"
    assert refs.whole("x-${aws_instance.web.id}") is None
    assert refs.whole("${a.b}${c.d}") is None
