"""Service configs: each role's host-side templates, checked and bundled for `opsgit template`.

The templates are evaluated on hosts against live Consul data, so here they are only parsed and
checked: syntax, known filters, and no names other than the Consul functions. The bundle also
carries how the host runs them: `opsgit/templates.yaml` for `opsgit template --config`, and
systemd units for `opsgit template` and for the service under `opsgit exec`.
"""

from __future__ import annotations

import jinja2

from opsgit.errors import RenderError
from opsgit.render.artefacts import Artefact, stable_json
from opsgit.render.images import role_context
from opsgit.render.jinja import HOST_FUNCTIONS, SANDBOX_HINT, compile_template, undeclared_names, unsafe_attributes
from opsgit.repo.schema import suggest
from opsgit.repo.text import decode
from opsgit.repo.values import Repo, Role, line_containing


class ConfigRenderer:
    kind = "config"

    def __init__(self, repo: Repo, environment: jinja2.Environment) -> None:
        self.repo = repo
        self.jinja = environment

    def names(self, repo: Repo) -> list[str]:
        return sorted(repo.roles)

    def render(self, name: str) -> Artefact:
        role = self.repo.roles[name]
        directory = f"roles/{name}"
        files: dict[str, bytes] = {}
        reads = {role.file}
        for template in role.template_files:
            file = f"roles/{name}/templates/{template}"
            raw = (self.repo.root / file).read_bytes()
            self.check(file, raw)
            files[f"{directory}/templates/{template}"] = raw
            reads.add(file)
        files[f"{directory}/role.json"] = stable_json(role_context(role, self.repo))
        if role.service:
            files[f"{directory}/consul/{name}.json"] = stable_json({"service": service_definition(role)})
        if role.templates:
            files[f"{directory}/opsgit/templates.yaml"] = template_config(role)
            files[f"{directory}/systemd/opsgit-template.service"] = template_unit(role)
        if role.run:
            files[f"{directory}/systemd/{name}.service"] = service_unit(role)
        return Artefact(kind=self.kind, name=name, directory=directory, files=files, reads=frozenset(reads))

    def check(self, file: str, raw: bytes) -> None:
        source = decode(raw, file)
        compile_template(self.jinja, source, file)
        for name, at in unsafe_attributes(self.jinja, source):
            raise RenderError(f"unsafe template operation refused: access to {name!r}", file=file, line=at,
                              hint=SANDBOX_HINT)
        for name in sorted(undeclared_names(self.jinja, source, file)):
            if name not in HOST_FUNCTIONS:
                line = line_containing(source, name)
                raise RenderError(f"unknown name {name!r} in a host template", file=file, line=line,
                                  hint=suggest(name, HOST_FUNCTIONS)
                                  or f"host templates can call {', '.join(HOST_FUNCTIONS)}")


def service_definition(role: Role) -> dict[str, object]:
    """The role's Consul service definition, as `/etc/consul.d/<role>.json` wants it."""
    service = dict(role.service or {})
    service.setdefault("name", role.name)
    return service


HOST_OPSGIT = "/usr/local/bin/opsgit"
HOST_CONFIG_DIR = "/etc/opsgit"


def template_config(role: Role) -> bytes:
    """The `opsgit template --config` file for the host (sources relative to /etc/opsgit)."""
    entries = []
    for template in role.templates:
        entry: dict[str, object] = {"source": f"templates/{template.source}", "destination": template.destination}
        if template.command:
            entry["command"] = template.command
        if template.perms:
            entry["perms"] = template.perms
        entries.append(entry)
    return stable_json(entries)  # JSON is YAML: one serialiser for every artefact


def _exec_start(argv: list[str]) -> str:
    # systemd splits ExecStart= like a shell without one; quote what would otherwise split.
    return " ".join(arg if arg and all(c.isalnum() or c in "/._-:=@%+," for c in arg)
                    else '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"' for arg in argv)


def template_unit(role: Role) -> bytes:
    command = [HOST_OPSGIT, "template", "--config", f"{HOST_CONFIG_DIR}/templates.yaml"]
    return (f"[Unit]\nDescription=opsgit template: {role.name}'s config files from Consul\n"
            "After=network-online.target consul.service\nWants=network-online.target\n\n"
            f"[Service]\nExecStart={_exec_start(command)}\nRestart=always\nRestartSec=5\n\n"
            "[Install]\nWantedBy=multi-user.target\n").encode()


def service_unit(role: Role) -> bytes:
    command = list(role.run)
    if role.env_prefix:
        command = [HOST_OPSGIT, "exec", "--prefix", role.env_prefix, "--", *command]
    after = " ".join(unit for unit in ("network-online.target", "consul.service",
                                       "opsgit-template.service" if role.templates else "")
                     if unit and unit != f"{role.name}.service")
    return (f"[Unit]\nDescription={role.name}: {role.description}\n"
            f"After={after}\nWants=network-online.target\n\n"
            f"[Service]\nExecStart={_exec_start(command)}\nKillMode=mixed\nRestart=on-failure\n\n"
            "[Install]\nWantedBy=multi-user.target\n").encode()
