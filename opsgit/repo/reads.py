"""Which other environments' outputs an env.yaml reads: `${environment.global.outputs.zone_id}`
written in a module's inputs, a variable or an output. Read off the loaded (or only parsed) file,
never rendered: the renderer checks each reference it meets against these, and gitops/
environments.py orders the environments by them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opsgit.errors import ConfigError
from opsgit.graph import refs
from opsgit.repo.values import Environment, line_containing


@dataclass(frozen=True)
class Read:
    """`env` reads `output` of `upstream`, written at file:line."""

    env: str
    upstream: str
    output: str
    file: str
    line: int | None


def reads_of(environment: Environment) -> tuple[Read, ...]:
    """Every other environment's output that `environment`'s env.yaml reads, once each."""
    values = [dict(instance.inputs) for instance in environment.modules]
    values += [dict(environment.outputs), dict(environment.variables)]
    return reads_in(environment.name, environment.file, environment.origin.text, values)


def reads_in(env: str, file: str, text: str, values: Iterable[Any]) -> tuple[Read, ...]:
    """The reads written in `values` (parts of one env.yaml, whose `text` gives the lines)."""
    found: dict[tuple[str, str], Read] = {}
    expressions: list[str] = []
    for value in values:
        refs.collect(value, expressions)
    for expression in expressions:
        try:
            read = refs.upstream_output(expression)
        except refs.ReferenceSyntaxError as error:
            raise ConfigError(str(error), file=file, line=line_containing(text, "${" + expression)) from None
        if read is None or read in found:
            continue
        upstream, output = read
        line = line_containing(text, f"${{environment.{upstream}.outputs.{output}")
        found[read] = Read(env, upstream, output, file, line)
    return tuple(sorted(found.values(), key=lambda r: (r.upstream, r.output)))


MARK = "${" + refs.UPSTREAM + "."  # what every read contains: a text without it reads nothing
