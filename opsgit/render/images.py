"""Image templates: `templates/packer.json.j2` rendered for one role into Packer JSON.

Packer's JSON templates use `{{ }}` too (`{{timestamp}}`, `{{ env `HC_ROLE` }}`, `{{user `role`}}`).
Those expressions are recognised before Jinja sees the template and passed through untouched;
after rendering every surviving Packer expression is checked, because Packer itself only finds
a mangled one in the middle of a build.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import jinja2

from opsgit.errors import RenderError
from opsgit.render.artefacts import Artefact, stable_json
from opsgit.render.jinja import compile_template, render, transitive_reads
from opsgit.render.literals import Literals
from opsgit.repo.text import read_text
from opsgit.repo.values import Repo, Role, line_containing

TEMPLATE = "templates/packer.json.j2"

# Packer 1.6's template functions (packer.io/docs/templates/legacy_json_templates/engine).
PACKER_FUNCTIONS = frozenset({
    "timestamp", "uuid", "isotime", "env", "user", "build_name", "build_type", "template_dir", "pwd",
    "packer_version", "split", "replace", "replace_all", "clean_resource_name", "clean_ami_name", "lower",
    "upper", "consul_key", "vault", "aws_secretsmanager", "sed", "build",
})
NEEDS_NAME = frozenset({"env", "user", "build", "consul_key"})
EXPRESSION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
FIRST_WORD = re.compile(r"\s*(\.?[A-Za-z_]\w*)\s*([^\s]?)")
PACKER_GRAMMAR = re.compile(
    r"""^\s*(?:\.[A-Za-z_][\w.]*|(?P<func>[a-z_]+)(?P<args>(?:\s+(?:`[^`]*`|"[^"]*"|[\w.-]+))*))\s*$""")


def is_packer_expression(inner: str) -> bool:
    match = FIRST_WORD.match(inner)
    if not match:
        return False
    word, following = match.groups()
    if word.startswith("."):
        return True
    # `{{ role.name }}`, `{{ x | f }}`, `{{ f(x) }}` are Jinja; a bare Packer function name is Packer.
    return word in PACKER_FUNCTIONS and following not in (".", "(", "|", "[")


def protect_packer(source: str) -> str:
    """Wrap Packer's expressions in `{% raw %}` so Jinja leaves them alone (no newlines added).

    A small scanner rather than a regex: a Packer expression inside a Jinja string literal
    (`{{ m.stage(role, "{{user `dir`}}/root") }}`) belongs to Jinja and must stay as it is."""
    out: list[str] = []
    position = 0
    while True:
        start = _next_tag(source, position)
        if start < 0:
            out.append(source[position:])
            return "".join(out)
        out.append(source[position:start])
        opener = source[start:start + 2]
        if opener == "{#":
            end = source.find("#}", start)
            end = len(source) if end < 0 else end + 2
        else:
            end = _tag_end(source, start, "}}" if opener == "{{" else "%}")
        tag = source[start:end]
        if opener == "{%" and RAW_START.match(tag):
            closing = RAW_END.search(source, end)
            end = closing.end() if closing else len(source)
            tag = source[start:end]
        if opener == "{{" and is_packer_expression(tag[2:-2]):
            tag = "{% raw %}" + tag + "{% endraw %}"
        out.append(tag)
        position = end


RAW_START = re.compile(r"\{%-?\s*raw\s*-?%\}")
RAW_END = re.compile(r"\{%-?\s*endraw\s*-?%\}")


def _next_tag(source: str, position: int) -> int:
    found = [i for i in (source.find(o, position) for o in ("{{", "{%", "{#")) if i >= 0]
    return min(found) if found else -1


def _tag_end(source: str, start: int, closer: str) -> int:
    """Index just past the tag's closer, skipping closers inside '...' and "..." literals."""
    quote = ""
    index = start + 2
    while index < len(source):
        char = source[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif source.startswith(closer, index):
            return index + 2
        index += 1
    return len(source)


def check_packer_expressions(value: Any, source: str, in_variables: bool = False) -> None:
    """Every `{{ }}` left in the output must be well-formed Packer; `env` only in `variables`."""
    if isinstance(value, dict):
        for key, item in value.items():
            check_packer_expressions(item, source, in_variables or key == "variables")
    elif isinstance(value, list):
        for item in value:
            check_packer_expressions(item, source, in_variables)
    elif isinstance(value, str) and ("{{" in value or "}}" in value):
        _check_string(value, source, in_variables)


def _check_string(text: str, source: str, in_variables: bool) -> None:
    stripped = EXPRESSION.sub("", text)
    if "{{" in stripped or "}}" in stripped:
        raise _mangled(text, source, "unbalanced '{{' or '}}'; close every {{ with }}")
    for match in EXPRESSION.finditer(text):
        inner = match.group(1)
        parsed = PACKER_GRAMMAR.match(inner)
        function = parsed.group("func") if parsed else None
        if parsed is None or (function is not None and function not in PACKER_FUNCTIONS):
            raise _mangled(match.group(0), source, "not a Packer template function")
        if function in NEEDS_NAME and not re.match(r"^\s+`[^`]+`$", parsed.group("args") or ""):
            raise _mangled(match.group(0), source, f"{function} takes one backtick-quoted name; "
                           f"write {{{{ {function} `NAME` }}}}")
        if function == "env" and not in_variables:
            raise _mangled(match.group(0), source, "Packer allows {{ env }} only in \"variables\"; "
                           "declare a variable with it and use {{ user `name` }}")


def _mangled(expression: str, source: str, reason: str) -> RenderError:
    problem, _, fix = reason.partition("; ")
    return RenderError(f"Packer expression {expression.strip()!r} is malformed: {problem}", file=TEMPLATE,
                       line=line_containing(source, expression.strip()[:40]),
                       hint=fix or "see Packer's template functions: {{ user `name` }}, {{timestamp}}, ...")


def role_context(role: Role, repo: Repo) -> dict[str, Any]:
    return {
        "name": role.name, "description": role.description, "image": dict(role.image),
        "service": dict(role.service) if role.service else None,
        "templates": [{"source": t.source, "destination": t.destination, "command": t.command,
                       "perms": t.perms} for t in role.templates],
        "env_prefix": role.env_prefix, "run": list(role.run), "template_files": list(role.template_files),
        "directory": f"roles/{role.name}",
    }


class ImageRenderer:
    kind = "image"

    def __init__(self, repo: Repo, environment: jinja2.Environment) -> None:
        self.repo = repo
        self.jinja = environment
        self._template: jinja2.Template | None = None
        self._source = ""
        self._reads: set[str] = set()

    def names(self, repo: Repo) -> list[str]:
        return sorted(repo.roles) if (repo.root / TEMPLATE).is_file() else []

    def _compiled(self) -> jinja2.Template:
        if self._template is None:
            path = self.repo.root / TEMPLATE
            self._source = read_text(path, TEMPLATE)
            self._template = compile_template(self.jinja, protect_packer(self._source), TEMPLATE)
            self._reads = {TEMPLATE, *transitive_reads(self.jinja, self.repo.root, protect_packer(self._source))}
        return self._template

    def render(self, name: str) -> Artefact:
        role = self.repo.roles[name]
        template = self._compiled()
        context = {"role": role_context(role, self.repo), "roles": list(self.repo.role_names),
                   "org": self.repo.settings.org}
        literals = Literals()
        text = render(template, TEMPLATE, context, self._source, literals)
        try:
            document = literals.restore(json.loads(text))
        except json.JSONDecodeError as error:
            raise RenderError(f"rendered for role {name!r} is not valid JSON: {error.msg} "
                              f"(rendered line {error.lineno})", file=TEMPLATE,
                              line=error.lineno if text.count("\n") == self._source.count("\n") else None,
                              hint="use the to_json filter for values") from None
        builders = document.get("builders") if isinstance(document, dict) else None
        if not isinstance(builders, list) or not builders or not all(isinstance(b, dict) for b in builders):
            raise RenderError(f"rendered for role {name!r} needs \"builders\": a list of builder objects",
                              file=TEMPLATE, line=line_containing(self._source, '"builders"'))
        check_packer_expressions(document, self._source)
        role_files = sorted({role.file, *(f"roles/{name}/templates/{f}" for f in role.template_files)})
        # The image carries the role's files, so they are part of what it is built from.
        bundle = hashlib.sha256()
        for path in role_files:
            bundle.update(path.encode() + b"\0" + hashlib.sha256((self.repo.root / path).read_bytes()).digest())
        return Artefact(kind=self.kind, name=name, directory=f"images/{name}",
                        files={f"images/{name}/packer.json": stable_json(document),
                               f"images/{name}/inputs.sha256": f"{bundle.hexdigest()}  roles/{name}\n".encode()},
                        reads=frozenset(self._reads | set(role_files)))
