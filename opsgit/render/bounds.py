"""The bounded sandbox every template runs in: what one render may take of time and memory.

Jinja's sandbox stops attribute tricks (`''.__class__`); these bounds stop a template from taking
the machine with one operator (`9 ** (9 ** 9)`, `'x' * 10 ** 10`), a filter (`center(10 ** 10)`)
or a loop nested in a loop. The CPU time of one render is the backstop for what no single bound
sees (a macro that calls itself twice); waiting on Consul in a host template does not use it.
"""

from __future__ import annotations

import contextvars
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from opsgit.render.literals import NEEDS_HOLDING, Literals, Verbatim

MAX_OUTPUT_CHARS = 16 * 1024 * 1024   # one rendered file, one string
MAX_WRITTEN_CHARS = 2 * MAX_OUTPUT_CHARS  # all values written by a render, macro buffers included
MAX_POWER_BITS = 4096
MAX_REPEAT = 1_000_000                # items one repetition, list or width may build
MAX_LIPSUM_PARAGRAPHS = 100
MAX_RENDER_CPU_SECONDS = 2.0
_CHECK_EVERY = 255                    # ticks between looks at the clock
BOUNDS_HINT = (f"one render may take {MAX_RENDER_CPU_SECONDS:g} s of CPU and build {MAX_OUTPUT_CHARS:,} characters: "
               "look for a loop, a macro or a size that is far larger than meant")


class BoundExceeded(SecurityError):
    """A render went past one of the bounds (a sandbox refusal, with its own hint)."""


class RenderState:
    """One render's allowance: its CPU deadline, the characters its values wrote, and where its
    values are held when the text is a document to parse."""

    __slots__ = ("deadline", "literals", "ticks", "written")

    def __init__(self, literals: Literals | None) -> None:
        self.deadline = time.thread_time() + MAX_RENDER_CPU_SECONDS
        self.literals = literals
        self.ticks = 0
        self.written = 0

    def tick(self) -> None:
        self.ticks += 1
        if self.ticks & _CHECK_EVERY == 0 and time.thread_time() > self.deadline:
            raise BoundExceeded(f"rendering took more than {MAX_RENDER_CPU_SECONDS:g} s of CPU time")


RENDERING: contextvars.ContextVar[RenderState | None] = contextvars.ContextVar("opsgit_rendering", default=None)


@jinja2.pass_context
def finalize(context: jinja2.runtime.Context, value: Any) -> Any:
    """Every `{{ }}` output: counted, and held when the render writes a document (this runs for
    every value a render writes, so it is kept to a few operations)."""
    state = RENDERING.get()
    if state is not None and isinstance(value, str):
        state.written += len(value)
        if state.written > MAX_WRITTEN_CHARS:
            raise BoundExceeded(f"the text written is more than {MAX_WRITTEN_CHARS:,} characters")
        if state.literals is not None and type(value) is str and NEEDS_HOLDING.search(value):
            return state.literals.hold(value)
    return value


def join_written(parts: Iterable[str]) -> str:
    """Jinja's `concat` for what a template writes (its output, a macro's, a `{% set %}` block):
    bounded in size, and verbatim (its values were held as they were written)."""
    pieces = list(parts)
    check_size(sum(map(len, pieces)), text=True)
    return Verbatim("".join(pieces))


def check_size(size: int, *, text: bool) -> None:
    limit = MAX_OUTPUT_CHARS if text else MAX_REPEAT
    if size > limit:
        raise BoundExceeded(f"this makes {size:,} {'characters' if text else 'items'}, more than {limit:,}")


def whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# A width in a printf-style or str.format specification: `%10000000d`, `%*d`, `{:>10000000}`.
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_FORMAT_SPEC = re.compile(r"\{[^{}]*:[^{}]*?(\d+)(?:\.(\d+))?[^{}]*\}")


def check_format(spec: str, arguments: tuple[Any, ...]) -> None:
    widths = [w for match in _PERCENT_SPEC.finditer(spec) for w in match.groups() if w and w != "*"]
    widths += [w for match in _FORMAT_SPEC.finditer(spec) for w in match.groups() if w]
    if "*" in spec:
        widths += [str(a) for a in arguments if whole(a)]
    if any(int(width) > MAX_REPEAT for width in widths):
        raise BoundExceeded(f"a format width over {MAX_REPEAT:,}")


def check_counts(name: str, arguments: Iterable[Any]) -> None:
    if any(whole(a) and abs(a) > MAX_REPEAT for a in arguments):
        raise BoundExceeded(f"{name}() given a size over {MAX_REPEAT:,}")


def lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    from jinja2.utils import generate_lorem_ipsum

    if not whole(n) or not 0 <= n <= MAX_LIPSUM_PARAGRAPHS or not whole(max) or not 0 < max <= 1000:
        raise BoundExceeded(f"lipsum(n={n}, max={max}) asks for too much text")
    return str(generate_lorem_ipsum(n=n, html=html, min=min, max=max))


def _sized_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A builtin filter whose numbers set the size of what it builds (`center(10 ** 10)`,
    `batch(10 ** 9, 0)`), or whose result may be far larger than its input (`join`, `replace`)."""
    passes = getattr(function, "jinja_pass_arg", None)  # a context, an eval context or the environment first

    def bounded(*args: Any, **kwargs: Any) -> Any:
        values = list(args[1:] if passes else args)
        if name == "format" and values and isinstance(values[0], str):
            check_format(values[0], tuple(values[1:]) + tuple(kwargs.values()))
        elif name == "replace" and len(values) >= 3 and all(isinstance(v, str) for v in values[:3]):
            check_size(len(values[0]) + values[0].count(values[1]) * len(values[2]), text=True)
        elif name == "join" and values and isinstance(values[0], list | tuple):
            check_size(sum(len(str(v)) for v in values[0]) + len(values[0]) * len(str(values[1:2] or "")), text=True)
        else:
            check_counts(name, values[1:] + list(kwargs.values()))
        return function(*args, **kwargs)
    if passes:
        bounded.jinja_pass_arg = passes  # type: ignore[attr-defined]
    return bounded


SIZED_FILTERS = ("center", "indent", "batch", "slice", "format", "replace", "join", "wordwrap", "truncate")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with the bounds above."""

    intercepted_binops = frozenset({"**", "*", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=finalize, **options)
        self.concat = join_written  # type: ignore[method-assign]
        self.globals["lipsum"] = lipsum
        for name in SIZED_FILTERS:
            self.filters[name] = _sized_filter(name, self.filters[name])

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and whole(left) and whole(right) and right > 0 and abs(left) > 1 \
                and right * abs(left).bit_length() > MAX_POWER_BITS:
            raise BoundExceeded(f"{left} ** {right} is larger than {MAX_POWER_BITS} bits")
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, str | list | tuple) and whole(times) and len(sequence) * times > MAX_REPEAT:
                    raise BoundExceeded(f"repeating {len(sequence)} items {times} times is more than {MAX_REPEAT:,}")
        if operator == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            check_size(len(left) + len(right), text=isinstance(left, str))
        if operator == "%" and isinstance(left, str):
            check_format(left, right if isinstance(right, tuple) else (right,))
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        state = RENDERING.get()
        if state is not None:
            state.tick()
        if isinstance(getattr(__obj, "__self__", None), str | list | tuple):  # 'x'.ljust(10 ** 10)
            check_counts(getattr(__obj, "__name__", "this"), list(args) + list(kwargs.values()))
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """`'{:>9999999999}'.format(1)`: the sandbox's own str.format, its widths bounded."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        spec = str(value.__self__)

        def bounded(*args: Any, **kwargs: Any) -> str:
            check_format(spec, args + tuple(kwargs.values()))
            return wrapped(*args, **kwargs)
        return bounded

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Every `{% for %}` iterates through `bounded_iter` and every `~` joins through
        `bounded_concat`: a loop nested in a loop counts against the render's CPU time, and a
        string doubled in a loop stops at the size bound."""
        tree: nodes.Template = _Bounding().visit(super()._parse(source, name, filename))
        return tree

    def bounded_iter(self, iterable: Any) -> Iterator[Any]:
        state = RENDERING.get()
        if state is None:
            yield from iterable
            return
        for item in iterable:
            state.tick()
            yield item

    def bounded_concat(self, *parts: Any) -> str:
        strings = [str(part) for part in parts]
        check_size(sum(map(len, strings)), text=True)
        return "".join(strings)


class _Bounding(NodeTransformer):
    def visit_For(self, node: nodes.For) -> nodes.Node:  # Jinja's visitor names the methods
        self.generic_visit(node)
        node.iter = nodes.Call(nodes.EnvironmentAttribute("bounded_iter"), [node.iter], [], None, None,
                               lineno=node.iter.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Call(nodes.EnvironmentAttribute("bounded_concat"), list(node.nodes), [], None, None,
                          lineno=node.lineno)
