"""Jinja in env.yaml values (variables, module inputs, provider settings, outputs): rendered from
the environment's own data, before and apart from any module. `{{ expr }}` alone keeps its
native type; anything else renders to a string."""

from __future__ import annotations

import re
from typing import Any

import jinja2

from opsgit.errors import RenderError
from opsgit.render.jinja import SANDBOX_HINT, VALUE_HINT, compile_template, describe_undefined, render, syntax_error
from opsgit.repo.values import Environment, Origin

WHOLE_EXPRESSION = re.compile(r"^\{\{(.*)\}\}$", re.DOTALL)


def value_context(env: Environment) -> dict[str, Any]:
    """What env.yaml's Jinja sees: `var`, `images` and `environment`."""
    return {"var": dict(env.variables), "images": dict(env.images),
            "environment": {"name": env.name, "description": env.description}}


class EnvValues:
    """Renders env.yaml values; compiled templates are kept for every value seen."""

    def __init__(self, jinja: jinja2.Environment) -> None:
        self.jinja = jinja
        self._compiled: dict[str, Any] = {}

    def render(self, value: Any, origin: Origin, context: dict[str, Any]) -> Any:
        if isinstance(value, str):
            if "{{" not in value and "{%" not in value:
                return value
            whole = WHOLE_EXPRESSION.match(value.strip())
            if whole and "{{" not in whole.group(1) and "}}" not in whole.group(1):
                return self.evaluate(whole.group(1), origin, context)
            template = self._compiled.get(value)
            if template is None:
                template = compile_template(self.jinja, value, origin.file)
                self._compiled[value] = template
            try:
                return render(template, origin.file, context, value)
            except RenderError as error:
                raise RenderError(error.message, file=origin.file, line=origin.line, hint=error.hint) from None
        if isinstance(value, dict):
            return {k: self.render(v, origin.child(k), context) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v, origin.child(i), context) for i, v in enumerate(value)]
        return value

    def evaluate(self, expression: str, origin: Origin, context: dict[str, Any]) -> Any:
        """`{{ expr }}` alone keeps its native type (a number stays a number)."""
        key = "\0" + expression
        compiled = self._compiled.get(key)
        if compiled is None:
            try:
                compiled = self.jinja.compile_expression(expression, undefined_to_none=False)
            except jinja2.TemplateSyntaxError as error:
                located = syntax_error(error, self.jinja, origin.file)
                raise RenderError(located.message, file=origin.file, line=origin.line, hint=located.hint) from None
            self._compiled[key] = compiled
        try:
            result = compiled(**context)
        except jinja2.UndefinedError as error:
            message, hint = describe_undefined(str(error.message), expression, context)
            raise RenderError(message, file=origin.file, line=origin.line, hint=hint) from None
        except jinja2.exceptions.SecurityError as error:
            raise RenderError(f"unsafe template operation refused: {error}", file=origin.file,
                              line=origin.line, hint=SANDBOX_HINT) from None
        except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as error:
            raise RenderError(f"template error: {error}", file=origin.file, line=origin.line, hint=VALUE_HINT) \
                from None
        if isinstance(result, jinja2.Undefined):
            message, hint = describe_undefined(result._undefined_message, expression, context)
            raise RenderError(message, file=origin.file, line=origin.line, hint=hint)
        return result


def environment_providers(env: Environment, jinja: jinja2.Environment) -> dict[str, Any]:
    """The environment's provider settings as its graph has them, from env.yaml alone."""
    rendered: dict[str, Any] = EnvValues(jinja).render(dict(env.providers), env.origin.child("providers"),
                                                       value_context(env))
    return rendered
