"""The one place Jinja environments are made.

Render-time templates (env.yaml values, module bodies, the Packer template) and host-side
templates (roles/*/templates, evaluated later by `opsgit template`) share one construction:
sandboxed (pull-request plans run in CI with credentials, so a template must not reach Python
internals), immutable (no `.append` on shared data), `StrictUndefined` (a typo fails the render
instead of rendering an empty string), and no autoescaping (the outputs are YAML and JSON).
"""

from __future__ import annotations

import base64
import difflib
import functools
import io
import json
import re
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from opsgit.errors import RenderError
from opsgit.render.bounds import BOUNDS_HINT, MAX_OUTPUT_CHARS, RENDERING, BoundedSandbox, BoundExceeded, RenderState
from opsgit.render.literals import Literals, Verbatim
from opsgit.repo.paths import inside
from opsgit.repo.text import read_text

# Names of the functions `opsgit template` provides on hosts (consul-template's, in Jinja form).
HOST_FUNCTIONS = ("key", "key_or_default", "key_exists", "ls", "tree", "safe_ls", "safe_tree", "service", "services",
                  "node", "nodes", "datacenters", "env", "timestamp", "file")

def to_json(value: Any, indent: int | None = None) -> str:
    return Verbatim(json.dumps(value, sort_keys=True, indent=indent, ensure_ascii=False))


def parse_json(text: str) -> Any:
    return json.loads(text)


def to_yaml(value: Any) -> str:
    from ruamel.yaml import YAML

    stream = io.StringIO()
    dumper = YAML(typ="safe", pure=True)
    dumper.default_flow_style = False
    dumper.dump(value, stream)
    return Verbatim(stream.getvalue())


def base64_decode(text: str) -> str:
    return base64.b64decode(text).decode("utf-8")


def base64_encode(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


FILTERS: dict[str, Callable[..., Any]] = {
    "to_json": to_json, "parse_json": parse_json, "to_yaml": to_yaml,
    "base64_decode": base64_decode, "base64_encode": base64_encode,
}


class RepoTemplateLoader(jinja2.BaseLoader):
    """Loads `{% include %}`/`{% import %}` targets from the repository's `templates/`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.directory = root / "templates"

    def get_source(self, environment: jinja2.Environment,
                   template: str) -> tuple[str, str, Callable[[], bool]]:
        parts = template.split("/")
        if template.startswith("/") or ".." in parts:
            raise jinja2.TemplateNotFound(template)
        path = self.directory.joinpath(*parts)
        if not path.is_file():
            raise jinja2.TemplateNotFound(template)
        inside(self.root, path)
        source = read_text(path, f"templates/{template}")
        mtime = path.stat().st_mtime
        return source, f"templates/{template}", lambda: path.stat().st_mtime == mtime


def make_environment(root: Path, *, host: bool = False) -> ImmutableSandboxedEnvironment:
    environment = BoundedSandbox(
        loader=RepoTemplateLoader(root),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.loopcontrols"],
    )
    environment.filters.update(FILTERS)
    if host:
        for name in HOST_FUNCTIONS:
            environment.globals[name] = _not_on_this_side(name)
    return environment


def _not_on_this_side(name: str) -> Callable[..., Any]:
    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise RenderError(f"{name}() reads Consul and is evaluated on hosts by `opsgit template`")
    return unavailable


_CODE: dict[tuple[str, str, bool, str, str], Any] = {}


VALUE_HINT = "check the values and filters this line works on"
SANDBOX_HINT = "templates run in Jinja's sandbox: use variables, filters and the documented functions"


def syntax_error(error: jinja2.TemplateSyntaxError, environment: jinja2.Environment, file: str) -> RenderError:
    """A Jinja syntax error as a user error with a fix: a did-you-mean for an unknown filter or
    test, otherwise where to look."""
    from opsgit.repo.schema import suggest

    message = error.message or "invalid template"
    hint = "check the brackets, quotes and {% %} blocks of this line"
    unknown = re.match(r"No (filter|test) named '([^']+)'", message)
    if unknown:
        known = environment.filters if unknown.group(1) == "filter" else environment.tests
        hint = suggest(unknown.group(2), known) or f"known {unknown.group(1)}s: {', '.join(sorted(known)[:12])}, ..."
    return RenderError(f"template syntax error: {message}", file=error.filename or file, line=error.lineno,
                       hint=hint)


def compile_template(environment: jinja2.Environment, source: str, file: str) -> jinja2.Template:
    """Compile `source` so that errors name `file` and its line numbers. The compiled code is
    kept by source text: rendering two commits compiles each unchanged template once."""
    key = (file, source, "key" in environment.globals, environment.variable_start_string,
           environment.variable_end_string)
    code = _CODE.get(key)
    if code is None:
        try:
            code = environment.compile(source, name=file, filename=file)
        except jinja2.TemplateSyntaxError as error:
            raise syntax_error(error, environment, file) from None
        if len(_CODE) > 4096:
            _CODE.clear()
        _CODE[key] = code
    return environment.template_class.from_code(environment, code, environment.make_globals(None), None)


def render(template: jinja2.Template, file: str, context: dict[str, Any], source: str = "",
           literals: Literals | None = None) -> str:
    """Render within the render bounds; errors name `file` and the template line (`source` lets
    them suggest a fix). With `literals`, the text is a document to parse: values are held there
    and `literals.restore()` puts them back in the parsed data."""
    token = RENDERING.set(RenderState(literals))
    try:
        text = str.__str__(template.render(context))  # a plain str again: libyaml wants exactly that
    except RenderError:
        raise
    except MemoryError:
        raise RenderError("rendering ran out of memory", file=file,
                          hint="a loop probably repeats far more than meant") from None
    except jinja2.TemplateSyntaxError as error:  # from an included template
        raise syntax_error(error, template.environment, file) from None
    except jinja2.TemplateNotFound as error:
        raise RenderError(f"template {error.name!r} not found in templates/", file=file,
                          line=_template_line(error, file),
                          hint="include and import files of templates/ by their path there, such as macros.j2") \
            from None
    except jinja2.UndefinedError as error:
        line = _template_line(error, file)
        lines = source.splitlines()
        text = lines[line - 1] if line and line <= len(lines) else ""
        message, hint = describe_undefined(str(error.message or error), text, context)
        raise RenderError(message, file=file, line=line, hint=hint) from None
    except jinja2.exceptions.SecurityError as error:
        raise RenderError(f"unsafe template operation refused: {error}", file=file,
                          line=_template_line(error, file),
                          hint=BOUNDS_HINT if isinstance(error, BoundExceeded) else SANDBOX_HINT) from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as error:
        raise RenderError(f"template error: {type(error).__name__}: {error}", file=file,
                          line=_template_line(error, file), hint=VALUE_HINT) from None
    except RecursionError:
        raise RenderError("template recursion too deep", file=file,
                          hint="a macro or include calls itself without end") from None
    finally:
        RENDERING.reset(token)
    if len(text) > MAX_OUTPUT_CHARS:
        raise RenderError(f"rendered output is larger than {MAX_OUTPUT_CHARS} characters", file=file,
                          hint="a loop probably repeats far more than meant")
    return text


def describe_undefined(message: str, line: str, context: Mapping[str, Any]) -> tuple[str, str | None]:
    """Jinja says "'dict object' has no attribute 'nmae'"; say "undefined name 'var.nmae'" and
    suggest the closest name that does exist."""
    match = re.search(r"has no attribute '([^']+)'", message) or re.search(r"'([^']+)' is undefined", message)
    if not match:
        return message.replace("jinja2.utils.", ""), None
    name = match.group(1)
    pattern = r"([A-Za-z_][\w.]*)\." + re.escape(name) + r"\b"
    owner = re.search(pattern, line) if "has no attribute" in message else None
    if owner:
        path = owner.group(1)
        scope: Any = context
        for part in path.split("."):
            scope = scope.get(part) if isinstance(scope, Mapping) else None
        candidates = list(scope) if isinstance(scope, Mapping) else []
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        return f"undefined name '{path}.{name}'", (f"did you mean '{path}.{close[0]}'?" if close else
                                                 f"known: {', '.join(sorted(candidates))}" if candidates else None)
    close = difflib.get_close_matches(name, list(context), n=1, cutoff=0.6)
    return f"undefined name {name!r}", (f"did you mean {close[0]!r}?" if close
                                        else f"known names: {', '.join(sorted(context))}")


def _template_line(error: BaseException, file: str) -> int | None:
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename == file or frame.filename.startswith("templates/"):
            line = frame.lineno
    return line


@functools.lru_cache(maxsize=4096)
def referenced_templates(environment: jinja2.Environment, source: str) -> tuple[str, ...]:
    """Templates a source includes or imports, by name; `*` if a name is computed at run time."""
    try:
        names = list(meta.find_referenced_templates(environment.parse(source)))
    except jinja2.TemplateSyntaxError:
        return ()
    return tuple(sorted("*" if name is None else name for name in names))


def undeclared_names(environment: jinja2.Environment, source: str, file: str) -> set[str]:
    try:
        ast = environment.parse(source)
    except jinja2.TemplateSyntaxError as error:
        raise syntax_error(error, environment, file) from None
    return set(meta.find_undeclared_variables(ast))


def unsafe_attributes(environment: jinja2.Environment, source: str) -> Iterable[tuple[str, int]]:
    """`x.__globals__`, `x['_private']`: what the sandbox would refuse when the template runs on a
    host, found before it ships in an image."""
    ast = environment.parse(source)
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else getattr(getattr(node, "arg", None), "value", None)
        if isinstance(name, str) and name.startswith("_"):
            yield name, node.lineno


def called_filters(environment: jinja2.Environment, source: str) -> Iterable[tuple[str, int]]:
    ast = environment.parse(source)
    for node in ast.find_all((nodes.Filter, nodes.Test)):
        yield node.name, node.lineno


def transitive_reads(environment: jinja2.Environment, root: Path, source: str) -> set[str]:
    """Repository files a template reads through includes and imports, followed transitively."""
    reads: set[str] = set()
    pending = list(referenced_templates(environment, source))
    while pending:
        name = pending.pop()
        if name == "*":
            reads.update(p.relative_to(root).as_posix() for p in (root / "templates").rglob("*")
                         if p.is_file())
            continue
        file = f"templates/{name}"
        if file in reads:
            continue
        reads.add(file)
        path = root / file
        if path.is_file():
            pending.extend(referenced_templates(environment, read_text(path, file)))
    return reads
