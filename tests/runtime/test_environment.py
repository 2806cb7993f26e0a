"""The key → variable mapping of `opsgit exec`, as pure values."""

from __future__ import annotations

from opsgit.runtime.consul_data import KeyPair, ServiceInstance
from opsgit.runtime.environment import (
    EnvironmentOptions,
    NamingOptions,
    compute_environment,
    prefix_variables,
    service_variables,
)
from opsgit.runtime.exec import ExecOptions, changed_names, compute_child_environment


def pairs(prefix: str, **values: str) -> tuple[KeyPair, ...]:
    return tuple(KeyPair(key.replace("__", "/"), f"{prefix}/{key.replace('__', '/')}", value)
                 for key, value in values.items())


def test_names_are_the_key_below_the_prefix_and_folders_are_skipped() -> None:
    found = (*pairs("service/binstore", postgres_addr="10.0.0.5", db__host="db1"),
             KeyPair("db/", "service/binstore/db/", ""), KeyPair("", "service/binstore/", ""))
    assert prefix_variables("service/binstore", found, NamingOptions()) == {
        "postgres_addr": "10.0.0.5", "db/host": "db1"}


def test_with_prefix_sanitize_and_upcase_apply_in_order() -> None:
    found = pairs("service/binstore-1", db__host="db1")
    assert prefix_variables("service/binstore-1", found, NamingOptions(with_prefix=True)) == {
        "service_binstore_1_db/host": "db1"}
    assert prefix_variables("/service/binstore-1/", found, NamingOptions(with_prefix=True, sanitize=True,
                                                                          upcase=True)) == {
        "SERVICE_BINSTORE_1_DB_HOST": "db1"}


def test_later_sources_win_and_pristine_drops_the_parent() -> None:
    parent = {"PATH": "/usr/bin", "PORT": "1"}
    first, second = {"PORT": "2", "A": "a"}, {"PORT": "3"}
    environment, rejected = compute_environment(parent, [first, second], EnvironmentOptions())
    assert environment == {"PATH": "/usr/bin", "PORT": "3", "A": "a"} and not rejected
    pristine, _ = compute_environment(parent, [first, second], EnvironmentOptions(pristine=True))
    assert pristine == {"PORT": "3", "A": "a"}


def test_allow_and_deny_globs_filter_the_final_names_deny_winning() -> None:
    options = EnvironmentOptions(pristine=True, allow=("DB_*", "PORT"), deny=("DB_PASSWORD",))
    environment, _ = compute_environment({}, [{"DB_HOST": "h", "DB_PASSWORD": "p", "PORT": "1", "X": "x"}], options)
    assert environment == {"DB_HOST": "h", "PORT": "1"}


def test_names_and_values_that_cannot_be_variables_are_reported_not_passed() -> None:
    environment, rejected = compute_environment({}, [{"a=b": "1", "ok": "fine", "nul": "x\0y"}],
                                                EnvironmentOptions(pristine=True))
    assert environment == {"ok": "fine"}
    assert sorted(r.name for r in rejected) == ["a=b", "nul"]


def test_service_variables_from_the_first_healthy_instance() -> None:
    instances = (ServiceInstance("node-a", "10.0.0.1", 8080, "web-1", "web", ("blue",)),
                 ServiceInstance("node-b", "10.0.0.2", 8081, "web-2", "web"))
    assert service_variables("web-east", instances, NamingOptions(sanitize=True, upcase=True)) == {
        "WEB_EAST_ADDRESS": "10.0.0.1", "WEB_EAST_PORT": "8080", "WEB_EAST_ID": "web-1", "WEB_EAST_NODE": "node-a",
        "WEB_EAST_TAGS": "blue", "WEB_EAST_INSTANCES": "10.0.0.1:8080,10.0.0.2:8081"}


def test_the_child_waits_until_every_prefix_has_keys() -> None:
    options = ExecOptions(prefixes=("a", "b"), environment=EnvironmentOptions(pristine=True))
    data = {("tree", "a"): pairs("a", x="1"), ("tree", "b"): ()}
    assert compute_child_environment({}, options, data) is None
    data[("tree", "b")] = pairs("b", x="2", y="3")
    assert compute_child_environment({}, options, data) == ({"x": "2", "y": "3"}, [])


def test_a_rewrite_of_the_same_value_changes_nothing() -> None:
    options = ExecOptions(prefixes=("a",), environment=EnvironmentOptions(pristine=True))
    before = compute_child_environment({}, options, {("tree", "a"): (KeyPair("x", "a/x", "1", modify_index=5),)})
    after = compute_child_environment({}, options, {("tree", "a"): (KeyPair("x", "a/x", "1", modify_index=9),)})
    assert before is not None and after is not None
    assert before == after and changed_names(before[0], after[0]) == []
    assert changed_names({"x": "1", "y": "2"}, {"x": "2", "z": "3"}) == ["x", "y", "z"]
