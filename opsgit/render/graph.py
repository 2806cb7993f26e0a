"""Render one environment into its resource graph.

Stage one is Jinja, here: env.yaml values and module bodies are rendered with repository data
only. Stage two is the `${...}` references, which stay in the graph for apply time; this module
only makes them absolute, inlines module outputs, and turns them into dependency edges.

While rendering, an absolute reference is marked with a leading `/` (`${/module.redis.aws_instance
.redis.private_ip}`) so that a reference that arrived through a module input is never prefixed a
second time with the module's own path; the marks are removed once the graph is complete.

Here: env.yaml's modules instantiated (and replayed from the memo), resource blocks added, and
references made absolute. Beside it: `env_values.py` (Jinja in env.yaml values), `variables.py`
(module inputs bound to their variables), `blocks.py` (count, for_each, lifecycle), `build.py`
(what a render accumulates, and its Draft) and `finish.py` (a draft finished into a Graph, and two
drafts compared).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import jinja2

from opsgit.errors import ConfigError, RenderError
from opsgit.graph import Graph, Resource, refs, topological_order
from opsgit.render.artefacts import Artefact, stable_json
from opsgit.render.blocks import expand, expansions, lifecycle_of
from opsgit.render.build import Block, Build, Draft, added, module_address, replay
from opsgit.render.env_values import EnvValues, value_context
from opsgit.render.finish import (
    finish,
    graph_document,
    unmark,
)
from opsgit.render.jinja import (
    compile_template,
    render,
    transitive_reads,
)
from opsgit.render.literals import Literals
from opsgit.render.memo import InstanceMemo, InstanceRecord, freeze
from opsgit.render.variables import bind_variables, mentions_sensitive, sibling_mentions
from opsgit.repo import yamlio
from opsgit.repo.reads import reads_of
from opsgit.repo.schema import check_keys, expect, expect_mapping, suggest
from opsgit.repo.values import Environment, Module, ModuleInstance, Origin, Repo
from opsgit.secrets import redact_data
from opsgit.secrets import register as register_secret

BODY_KEYS = ("resources", "modules", "outputs")
META_KEYS = ("count", "for_each", "depends_on", "lifecycle", "provider")
BUILTIN_PROVIDERS = ("local", "null", "time")
RESOURCE_KEY = re.compile(r"^(?:data\.)?([a-z][a-z0-9]*_[a-z0-9_]+)\.([A-Za-z_][\w-]*)$")
WHOLE_EXPRESSION = re.compile(r"^\{\{(.*)\}\}$", re.DOTALL)
MAX_MODULE_DEPTH = 16


class GraphRenderer:
    """Renders environments; compiled templates are shared across all of them."""

    def __init__(self, repo: Repo, environment: jinja2.Environment) -> None:
        self.repo = repo
        self.jinja = environment
        self._modules: dict[str, jinja2.Template] = {}
        self._module_reads: dict[str, set[str]] = {}
        self.values = EnvValues(environment)
        self._fingerprints: dict[str, str] = {}
        self._templates: str | None = None

    # -- public ------------------------------------------------------------------------------

    def render(self, env: Environment) -> tuple[Graph, set[str]]:
        """The environment's graph and the repository files it read."""
        draft = self.draft(env)
        return finish(draft), draft.build.reads

    def draft(self, env: Environment, memo: InstanceMemo | None = None) -> Draft:
        """The environment rendered up to its references (see `Draft`). With a `memo`, module
        instances recorded by an earlier render of the same environment are replayed."""
        build = Build(env, memo=memo, upstream_reads=frozenset((r.upstream, r.output) for r in reads_of(env)))
        if memo is not None:
            build.environment_key = freeze([env.name, env.description, dict(env.images), sorted(env.providers)])
            build.values_key = freeze([dict(env.variables), dict(env.images), env.name, env.description,
                                       self._templates_fingerprint()])
        for name in env.sensitive_variables:
            register_secret(env.variables.get(name))
        build.reads.add(env.file)
        if env.images_file:
            build.reads.add(env.images_file)
        context = value_context(env)
        outputs = self._instantiate_children(build, env.modules, (), context, env.origin)
        env_outputs = {
            name: self._absolute(build, self.values.render(value, env.origin.child("outputs", name), context),
                                 (), outputs, env.origin.child("outputs", name))
            for name, value in env.outputs.items()
        }
        return Draft(
            build=build, outputs=unmark(env_outputs),
            sensitive_outputs=frozenset(name for name, value in env.outputs.items()
                                        if mentions_sensitive(value, env.sensitive_variables)),
            providers=self.values.render(dict(env.providers), env.origin.child("providers"), context),
        )

    # -- modules -----------------------------------------------------------------------------

    def _instantiate_children(self, build: Build, instances: tuple[ModuleInstance, ...],
                              path: tuple[str, ...], context: dict[str, Any],
                              origin: Origin) -> dict[str, dict[str, Any]]:
        """Instantiate sibling module instances, each after the siblings whose outputs it reads."""
        if len(path) >= MAX_MODULE_DEPTH:
            raise origin.error(f"modules nest deeper than {MAX_MODULE_DEPTH} levels",
                               "a module probably instantiates itself")
        by_name = {i.name: i for i in instances}
        reads_siblings = {i.name: tuple(sorted(sibling_mentions(i.inputs, by_name, i.name)))
                          for i in instances}
        order = topological_order(reads_siblings, lambda name: f"{by_name[name].origin.file}:"
                                                               f"{by_name[name].origin.line}")
        outputs: dict[str, dict[str, Any]] = {}
        for name in order:
            instance = by_name[name]
            module = self.repo.modules[instance.source]
            inputs = self._render_inputs(build, instance, path, context)
            inputs = self._absolute(build, inputs, path, outputs, instance.origin.child("inputs"))
            outputs[name] = self._instantiate(build, instance, module, inputs, (*path, name))
        return outputs

    def _render_inputs(self, build: Build, instance: ModuleInstance, path: tuple[str, ...],
                       context: dict[str, Any]) -> Any:
        """An instance's inputs with their Jinja rendered; an environment's own instances' inputs
        are taken from the memo when the other commit rendered the same ones from the same values."""
        origin = instance.origin.child("inputs")
        if build.memo is None or path:
            return self.values.render(dict(instance.inputs), origin, context)
        key = (freeze(instance.inputs), build.values_key)
        rendered = build.memo.values.get(key)
        if rendered is None:
            rendered = build.memo.values[key] = self.values.render(dict(instance.inputs), origin, context)
        return rendered

    def _templates_fingerprint(self) -> str:
        """The content of templates/ on this commit: env.yaml values may include its files."""
        if self._templates is None:
            digest = hashlib.sha256()
            for file in self.repo.shared_templates:
                digest.update(file.encode() + b"\0" + hashlib.sha256((self.repo.root / file).read_bytes()).digest())
            self._templates = digest.hexdigest()
        return self._templates

    def _instantiate(self, build: Build, instance: ModuleInstance, module: Module, inputs: dict[str, Any],
                     path: tuple[str, ...]) -> dict[str, Any]:
        if module.name in build.stack:
            chain = " -> ".join([*build.stack, module.name])
            raise ConfigError(f"module {module.name!r} instantiates itself: {chain}", file=instance.origin.file,
                              line=instance.origin.line or instance.origin.line_of(f"source: {module.name}"),
                              hint="a module may not contain itself, directly or through others")
        if build.memo is None:
            return self._instantiate_fresh(build, instance, module, inputs, path)
        return self._replay_or_record(build, build.memo, instance, module, inputs, path)

    def _replay_or_record(self, build: Build, memo: InstanceMemo, instance: ModuleInstance, module: Module,
                          inputs: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        """Replay the other commit's record of this very instance, or render it and record it."""
        key = (module.name, self._fingerprint(module), path, tuple(build.stack), freeze(inputs),
               build.environment_key)
        record = memo.instances.get(key)
        if record is not None and all(name in self.repo.modules and self._fingerprint(self.repo.modules[name]) == used
                                      for name, used in record.modules):
            replay(build, record)
            return dict(record.outputs)
        counts = len(build.resources), len(build.blocks), len(build.module_resources), len(build.origins)
        # the instance's own reads and modules, collected apart and then added to the build's
        reads, used = build.reads, build.modules_used
        build.reads, build.modules_used = set(), set()
        try:
            outputs = self._instantiate_fresh(build, instance, module, inputs, path)
            own_reads, own_modules = build.reads, build.modules_used
        finally:
            reads.update(build.reads)
            used.update(build.modules_used)
            build.reads, build.modules_used = reads, used
        memo.instances[key] = InstanceRecord(
            resources=added(build.resources, counts[0]), blocks=added(build.blocks, counts[1]),
            module_resources=added(build.module_resources, counts[2]), origins=added(build.origins, counts[3]),
            reads=frozenset(own_reads), modules=tuple(sorted(own_modules)), outputs=outputs)
        return outputs

    def _instantiate_fresh(self, build: Build, instance: ModuleInstance, module: Module,
                           inputs: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        if build.memo is not None:
            build.modules_used.add((module.name, self._fingerprint(module)))
        build.stack.append(module.name)
        try:
            return self._instantiate_body(build, module, inputs, path, instance.origin)
        finally:
            build.stack.pop()

    def _fingerprint(self, module: Module) -> str:
        """The content a module renders from on this commit: its file, its variables and every
        template it reads. Equal on two commits, the same inputs render the same body."""
        fingerprint = self._fingerprints.get(module.name)
        if fingerprint is None:
            self._module_template(module)
            digest = hashlib.sha256(repr((module.file, module.body, freeze(
                [[v.name, v.type, v.default, v.required, v.sensitive] for v in module.variables.values()]))).encode())
            for file in sorted(self._module_reads[module.name]):
                path = self.repo.root / file
                digest.update(file.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"\1missing"))
            fingerprint = self._fingerprints[module.name] = digest.hexdigest()
        return fingerprint

    def _instantiate_body(self, build: Build, module: Module, inputs: dict[str, Any], path: tuple[str, ...],
                          origin: Origin) -> dict[str, Any]:
        variables = bind_variables(module, inputs, origin)
        template = self._module_template(module)
        build.reads.add(module.file)
        build.reads.update(self._module_reads[module.name])
        context = {
            "var": variables, "images": dict(build.env.images),
            "environment": {"name": build.env.name, "description": build.env.description},
            "module": {"name": path[-1], "path": module_address(path), "source": module.name},
        }
        literals = Literals()
        text = render(template, module.file, context, module.body, literals)
        try:
            parsed = literals.restore(yamlio.parse(text, module.file))
        except ConfigError as error:
            raise ConfigError(error.message, file=module.file, line=source_line(module.body, text, error.line),
                              hint=error.hint) from None
        body = expect_mapping(parsed, module.origin, "the rendered module body")
        check_keys(body, module.origin, BODY_KEYS)
        children = tuple(
            ModuleInstance(name=name, source=self._child_source(spec, module, name), inputs=spec.get("inputs") or {},
                           origin=module.origin.child("modules", name))
            for name, spec in expect_mapping(body.get("modules"), module.origin, "modules").items()
        )
        child_outputs = self._instantiate_children(build, children, path, context, module.origin)
        build.module_resources.setdefault(module_address(path), [])
        for key, spec in expect_mapping(body.get("resources"), module.origin, "resources").items():
            self._add_resources(build, module, path, key, spec, child_outputs)
        return {
            name: self._absolute(build, value, path, child_outputs, module.origin.child("outputs", name))
            for name, value in expect_mapping(body.get("outputs"), module.origin, "outputs").items()
        }

    def _child_source(self, spec: Any, module: Module, name: str) -> str:
        origin = module.origin
        spec = expect_mapping(spec, origin, f"module instance {name!r}")
        check_keys(spec, origin, ("source", "inputs"), required=("source",))
        source = spec["source"]
        if source not in self.repo.modules:
            raise RenderError(f"unknown module {source!r} in instance {name!r}", file=module.file,
                              line=origin.line_of(f"{name}:"),
                              hint=suggest(str(source), self.repo.modules) or "add it under modules/")
        return str(source)

    def _module_template(self, module: Module) -> jinja2.Template:
        template = self._modules.get(module.name)
        if template is None:
            template = compile_template(self.jinja, module.body, module.file)
            self._modules[module.name] = template
            self._module_reads[module.name] = transitive_reads(self.jinja, self.repo.root, module.body)
        return template

    # -- resources ---------------------------------------------------------------------------

    def _add_resources(self, build: Build, module: Module, path: tuple[str, ...], key: str, spec: Any,
                       child_outputs: dict[str, dict[str, Any]]) -> None:
        line = module.origin.line_of(f"{key}:")
        where = f"{module.file}:{line}" if line else module.file
        match = RESOURCE_KEY.match(key)
        if not match:
            raise RenderError(f"resource key {key!r} must be TYPE.NAME, such as aws_instance.web, or "
                              "data.TYPE.NAME for a data source", file=module.file, line=line)
        rtype, name = match.groups()
        mode = "data" if key.startswith("data.") else "managed"
        if not isinstance(spec, dict):
            raise RenderError(f"resource {key} must be a mapping of attributes", file=module.file, line=line)
        attributes = {k: v for k, v in spec.items() if k not in META_KEYS}
        provider = spec.get("provider", rtype.split("_", 1)[0])
        if provider not in build.env.providers and provider not in BUILTIN_PROVIDERS:
            raise RenderError(f"resource {key} needs provider {provider!r}, which {build.env.file} does not "
                              "configure", file=module.file, line=line,
                              hint=f"add providers: {{{provider}: {{...}}}} to {build.env.file}")
        lifecycle = lifecycle_of(spec.get("lifecycle"), key, module.file, line)
        prefix = module_address(path)
        block_address = f"{prefix}.{key}" if prefix else key
        if block_address in build.blocks:
            raise RenderError(f"duplicate resource {block_address}", file=module.file, line=line,
                              hint="each TYPE.NAME may appear once per module")
        block = Block(counted="count" in spec or "for_each" in spec)
        build.blocks[block_address] = block
        count_line = module.origin.line_of("count:", start=line) or module.origin.line_of("for_each:", start=line)
        for index, each in expansions(spec, key, module.file, count_line or line):
            address = block_address + refs.format_index(index)
            expanded = expand(attributes, index, each, "count" in spec, "for_each" in spec, key,
                               module.file, line)
            expanded = self._absolute(build, expanded, path, child_outputs, module.origin.child(key),
                                      line=line)
            depends_on = [self._depends_on(build, d, path, key, module.file, line)
                          for d in expect(spec.get("depends_on", []), list, module.origin.child(key),
                                          "depends_on")]
            build.resources[address] = Resource(
                address=address, module=prefix, type=rtype, name=name, index=index, provider=provider,
                attributes=expanded, dependencies=tuple(depends_on), lifecycle=lifecycle, source=where, mode=mode)
            block.instances.append(address)
            build.origins[address] = module.origin
            build.module_resources[prefix].append(address)

    def _depends_on(self, build: Build, target: Any, path: tuple[str, ...], key: str, file: str,
                    line: int | None) -> str:
        if not isinstance(target, str):
            raise RenderError(f"depends_on of {key} must list addresses", file=file, line=line)
        parts = target.split(".")
        if len(parts) == 2 and parts[0] == "module":
            return "/module:" + module_address((*path, parts[1]))
        prefix = module_address(path)
        return "/" + (f"{prefix}.{target}" if prefix else target)

    # -- references --------------------------------------------------------------------------

    def _absolute(self, build: Build, value: Any, path: tuple[str, ...],
                  child_outputs: Mapping[str, Mapping[str, Any]], origin: Origin,
                  line: int | None = None) -> Any:
        """Make every reference in `value` absolute and inline module outputs it reads."""
        prefix = "".join(f"module.{m}." for m in path)

        def resolve(expression: str) -> tuple[bool, Any]:
            if expression.startswith("/"):
                return False, expression
            try:
                parts = refs.tokens(expression)
            except refs.ReferenceSyntaxError as error:
                raise self._ref_error(str(error), origin, expression, line) from None
            head = parts[0]
            if head in ("var", "local"):
                raise self._ref_error(f"${{{expression}}} is not an apply-time value", origin, expression,
                                      line, hint=f"use {{{{ {expression} }}}} (Jinja) for {head}iables"
                                      if head == "var" else None)
            if head in ("count", "each"):
                raise self._ref_error(f"${{{expression}}} used outside a resource with "
                                      f"{'count' if head == 'count' else 'for_each'}", origin, expression, line)
            if head == refs.UPSTREAM:
                return False, "/" + self._upstream(build, expression, path, origin, line)
            if head == "module":
                if len(parts) < 3 or not isinstance(parts[1], str) or not isinstance(parts[2], str):
                    raise self._ref_error(f"${{{expression}}} must name a module output", origin,
                                          expression, line)
                child, output = parts[1], parts[2]
                if child not in child_outputs:
                    raise self._ref_error(f"${{{expression}}} refers to unknown module instance {child!r}",
                                          origin, expression, line, hint=suggest(child, child_outputs))
                if output not in child_outputs[child]:
                    raise self._ref_error(
                        f"module {child!r} has no output {output!r}", origin, expression, line,
                        hint=suggest(output, child_outputs[child])
                        or f"its outputs: {', '.join(sorted(child_outputs[child])) or 'none'}")
                value = child_outputs[child][output]
                for segment in parts[3:]:
                    value = index_output(value, segment, expression, origin, line, self)
                return True, value
            return False, "/" + prefix + expression

        def change(text: str) -> Any:
            unclosed = refs.unterminated(text)
            if unclosed is not None:
                raise self._ref_error(f"unterminated reference {unclosed}", origin, unclosed[2:], line,
                                      hint="close it with }")
            single = refs.whole(text)
            if single is not None:
                inlined, result = resolve(single)
                return result if inlined else "${" + result + "}"

            def one(expression: str) -> str:
                inlined, result = resolve(expression)
                if not inlined:
                    return "${" + str(result) + "}"
                if isinstance(result, (dict, list)):
                    raise self._ref_error(f"${{{expression}}} is a {type(result).__name__} and cannot be "
                                          "part of a string", origin, expression, line)
                return str(result).lower() if isinstance(result, bool) else str(result)
            return refs.substitute(text, one)

        return refs.walk_strings(value, change)

    def _upstream(self, build: Build, expression: str, path: tuple[str, ...], origin: Origin,
                  line: int | None) -> str:
        """Check a read of another environment's output (`${environment.global.outputs.zone_id}`);
        it stays a reference, resolved at plan time from that environment's state."""
        if path:
            raise self._ref_error(f"${{{expression}}}: a module reads another environment's output through an "
                                  "input", origin, expression, line,
                                  hint=f"pass it from {build.env.file}: inputs: {{NAME: ${{{expression}}}}}")
        try:
            upstream, output = refs.upstream_output(expression) or ("", "")
        except refs.ReferenceSyntaxError as error:
            raise self._ref_error(str(error), origin, expression, line) from None
        if (upstream, output) not in build.upstream_reads:
            raise self._ref_error(f"${{{expression}}} must be written out in {build.env.file}", origin, expression,
                                  line, hint="opsgit orders environments by reading env.yaml without rendering it, "
                                             "so the reference may not be built by Jinja")
        if upstream == build.env.name:
            raise self._ref_error(f"environment {upstream!r} reads its own output {output!r}", origin, expression,
                                  line, hint="use ${module.NAME.OUTPUT} within an environment")
        declared = self._declared_outputs(upstream)
        if declared is None:
            from opsgit.repo.load import environment_names

            raise self._ref_error(f"${{{expression}}} reads unknown environment {upstream!r}", origin, expression,
                                  line, hint=suggest(upstream, environment_names(self.repo.root))
                                  or "add it under environments/")
        if output not in declared:
            raise self._ref_error(f"environment {upstream!r} has no output {output!r}", origin, expression, line,
                                  hint=suggest(output, declared)
                                  or f"its outputs: {', '.join(sorted(declared)) or 'none'}")
        return expression

    def _declared_outputs(self, env: str) -> tuple[str, ...] | None:
        """The output names another environment's env.yaml declares (loaded, never rendered)."""
        found = self.repo.environments.get(env)
        if found is not None:
            return tuple(found.outputs)
        file = self.repo.root / "environments" / env / "env.yaml"
        if not file.is_file():
            return None
        # parsed only: the upstream's roles and modules need not be at hand (affected detection
        # exports just what the change reaches)
        data = yamlio.parse(file.read_text(encoding="utf-8"), f"environments/{env}/env.yaml")
        outputs = data.get("outputs") if isinstance(data, dict) else None
        return tuple(outputs) if isinstance(outputs, dict) else ()

    def _ref_error(self, message: str, origin: Origin, expression: str, line: int | None,
                   hint: str | None = None) -> RenderError:
        found = origin.line_of("${" + expression, default=line or origin.line)
        return RenderError(message, file=origin.file, line=found, hint=hint)


# -- finishing -------------------------------------------------------------------------------


def source_line(source: str, rendered: str, line: int | None) -> int | None:
    """Map a line of rendered output back to the template: the same line when the template
    rendered line for line, else the one template line with the same text."""
    if line is None:
        return None
    rendered_lines = rendered.splitlines()
    source_lines = source.splitlines()
    if len(rendered_lines) == len(source_lines):
        return line
    text = rendered_lines[line - 1].strip() if line <= len(rendered_lines) else ""
    matches = [n for n, s in enumerate(source_lines, start=1) if text and s.strip() == text]
    return matches[0] if matches else None


def index_output(value: Any, segment: Any, expression: str, origin: Origin, line: int | None,
                  renderer: GraphRenderer) -> Any:
    try:
        return value[segment]
    except (KeyError, IndexError, TypeError):
        raise renderer._ref_error(f"${{{expression}}}: output has no element {segment!r}", origin,
                                  expression, line) from None


class EnvironmentRenderer:
    """The graph artefact of each environment: `envs/<env>/graph.json`."""

    kind = "graph"

    def __init__(self, repo: Repo, environment: jinja2.Environment) -> None:
        self.graphs = GraphRenderer(repo, environment)
        self.repo = repo

    def names(self, repo: Repo) -> list[str]:
        return sorted(repo.environments)

    def draft(self, name: str, memo: InstanceMemo | None = None) -> Draft:
        """The environment's draft, for comparing two commits (see `same_rendering`)."""
        return self.graphs.draft(self.repo.environments[name], memo)

    def render(self, name: str) -> Artefact:
        graph, reads = self.graphs.render(self.repo.environments[name])
        sources = {address: resource.source for address, resource in graph.resources.items()}
        return Artefact(kind=self.kind, name=name, directory=f"envs/{name}",
                        # Sensitive values are masked here: build/ is shown and uploaded; the
                        # plan and apply use the graph in memory, saved plans are mode 0600.
                        files={f"envs/{name}/graph.json":
                               stable_json(redact_data(graph_document(graph, self.repo.environments[name])))},
                        reads=frozenset(reads), annotations={f"envs/{name}/sources.json": stable_json(sources)})


