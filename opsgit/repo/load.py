"""Discover a monorepo's files and build a validated Repo."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from opsgit.config import Settings, load_settings
from opsgit.engine.backends import BACKENDS as STATE_BACKENDS
from opsgit.errors import ConfigError
from opsgit.locks import LOCKS as LOCK_BACKENDS
from opsgit.repo import yamlio
from opsgit.repo.paths import inside
from opsgit.repo.schema import check_keys, expect, expect_command, expect_mapping, expect_name, suggest
from opsgit.repo.text import read_text
from opsgit.repo.values import (
    VARIABLE_TYPES,
    Environment,
    Module,
    ModuleInstance,
    Origin,
    Repo,
    Role,
    RoleTemplate,
    Variable,
)

ENV_KEYS = ("description", "providers", "state", "lock", "variables", "sensitive", "modules", "roles",
            "outputs", "images", "policy", "auto_apply")
INSTANCE_KEYS = ("source", "inputs")
MODULE_HEADER_KEYS = ("description", "variables")
VARIABLE_KEYS = ("type", "default", "description", "sensitive")
ROLE_KEYS = ("description", "image", "service", "templates", "env_prefix", "run")
ROLE_TEMPLATE_KEYS = ("source", "destination", "command", "perms")
# Where a role's host templates may write: configuration and service data, never a home
# directory, /usr/bin or /etc/../root. `opsgit template --role` holds the real paths to it too.
HOST_WRITE_ROOTS = ("/etc/", "/opt/", "/srv/", "/var/lib/", "/usr/local/etc/", "/run/")


def load_repo(root: Path, settings: Settings | None = None, *, only: Collection[str] | None = None,
              only_roles: Collection[str] | None = None, role_names: Collection[str] | None = None) -> Repo:
    """Load the monorepo. Affected detection loads only what a change can reach: `only` these
    environments, `only_roles` these roles (environments are then checked against `role_names`,
    the roles that exist)."""
    settings = settings or load_settings(root)
    modules = {m.name: m for m in (_load_module(root, d) for d in _subdirs(root / "modules"))}
    roles = {r.name: r for r in (_load_role(root, d) for d in _subdirs(root / "roles")
                                 if only_roles is None or d.name in only_roles)}
    known_roles = set(role_names) if role_names is not None else set(roles)
    environments = {
        e.name: e for e in (_load_environment(root, d, modules, known_roles) for d in _subdirs(root / "environments")
                            if only is None or d.name in only)
    }
    shared = tuple(
        sorted(inside(root, p).relative_to(root).as_posix() for p in (root / "templates").rglob("*") if p.is_file())
    ) if (root / "templates").is_dir() else ()
    return Repo(settings=settings, environments=environments, modules=modules, roles=roles,
                shared_templates=shared, role_names=tuple(sorted(known_roles)))


def load_environment(root: Path, env: str) -> Environment:
    """One environment from its env.yaml alone: the modules and roles it names are checked to
    exist, not loaded, so a broken module or role cannot stop `unlock`, `state` or `history`."""
    require_environment(root, env)
    modules = [d.name for d in _subdirs(root / "modules") if (d / "module.yaml").is_file()]
    roles = [d.name for d in _subdirs(root / "roles")]
    return _load_environment(root, root / "environments" / env, modules, roles)


def environment_names(root: Path) -> list[str]:
    """The environments of the repository (directories with an env.yaml)."""
    directory = root / "environments"
    return sorted(p.name for p in directory.iterdir() if (p / "env.yaml").exists()) if directory.is_dir() else []


def require_environment(root: Path, env: str) -> None:
    """Fail, with a did-you-mean, unless environments/<env>/env.yaml exists."""
    known = environment_names(root)
    if env not in known:
        raise ConfigError(f"unknown environment {env!r}",
                          hint=suggest(env, known) or f"environments: {', '.join(known) or 'none'}")


def _subdirs(parent: Path) -> list[Path]:
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read(root: Path, path: Path) -> tuple[str, str]:
    relative = path.relative_to(root).as_posix()
    inside(root, path)
    try:
        return relative, read_text(path, relative)
    except FileNotFoundError:
        raise ConfigError(f"missing {path.name}", file=relative,
                          hint=f"every {path.parent.parent.name[:-1]} directory needs one") from None
    except IsADirectoryError:
        raise ConfigError(f"{path.name} is a directory, not a file", file=relative,
                          hint=f"write {path.name} as a YAML file") from None


# Parsed files by (name, text): affected detection loads the same env.yaml files at two commits, and
# the values built from them are never mutated, so both sides can share one parse.
_PARSED_FILES: dict[tuple[str, str], Any] = {}


def _load_yaml_file(root: Path, path: Path) -> tuple[Origin, dict[str, Any]]:
    relative, text = _read(root, path)
    origin = Origin(relative, text)
    key = (relative, text)
    data = _PARSED_FILES.get(key)
    if data is None:
        data = yamlio.parse(text, relative)
        if len(_PARSED_FILES) >= 8192:
            _PARSED_FILES.clear()
        _PARSED_FILES[key] = data
    return origin, expect_mapping(data, origin, "the file")


# -- modules -----------------------------------------------------------------------------------

def _split_module(text: str) -> tuple[str, str, int]:
    """A module file is an interface document (plain YAML), a `---` line, then the body
    (Jinja over YAML). Returns header, body padded to keep line numbers, header line count."""
    lines = text.splitlines(keepends=True)
    start = 1 if lines and lines[0].rstrip() == "---" else 0
    for index in range(start, len(lines)):
        if lines[index].rstrip() == "---":
            header = "\n" * start + "".join(lines[start:index])
            body = "\n" * (index + 1) + "".join(lines[index + 1:])
            return header, body, index + 1
    return "", text, 0


def _load_module(root: Path, directory: Path) -> Module:
    relative, text = _read(root, directory / "module.yaml")
    origin = Origin(relative, text)
    name = expect_name(directory.name, origin, "module")
    header_text, body, _ = _split_module(text)
    header = expect_mapping(yamlio.parse(header_text, relative), origin, "the module header")
    origin = Origin(relative, header_text)  # the interface part, whose lines are the file's lines
    check_keys(header, origin, MODULE_HEADER_KEYS)
    variables = {
        var_name: _variable(var_name, spec, origin.child("variables", var_name))
        for var_name, spec in expect_mapping(header.get("variables"), origin.child("variables"),
                                             "variables").items()
    }
    return Module(name=name, file=relative, description=str(header.get("description", "")),
                  variables=variables, body=body, origin=Origin(relative, text))


def _variable(name: str, spec: Any, origin: Origin) -> Variable:
    expect_name(name, origin, "variable")
    spec = expect_mapping(spec, origin, f"variable {name!r}")
    check_keys(spec, origin, VARIABLE_KEYS)
    var_type = spec.get("type", "any")
    if var_type not in VARIABLE_TYPES:
        raise origin.child("type").error(f"unknown variable type {var_type!r}",
                                         suggest(str(var_type), VARIABLE_TYPES)
                                         or f"use one of {', '.join(VARIABLE_TYPES)}")
    return Variable(name=name, type=var_type, default=spec.get("default"), required="default" not in spec,
                    description=str(spec.get("description", "")),
                    sensitive=bool(expect(spec.get("sensitive", False), bool, origin, "sensitive")))


# -- roles -------------------------------------------------------------------------------------

def _load_role(root: Path, directory: Path) -> Role:
    origin, data = _load_yaml_file(root, directory / "role.yaml")
    name = expect_name(directory.name, origin, "role")
    check_keys(data, origin, ROLE_KEYS)
    template_dir = directory / "templates"
    template_files = tuple(sorted(
        inside(root, p).relative_to(template_dir).as_posix() for p in template_dir.rglob("*") if p.is_file()
    )) if template_dir.is_dir() else ()
    tests_dir = directory / "tests"
    test_files = tuple(sorted(p.name for p in tests_dir.glob("test_*.py"))) if tests_dir.is_dir() else ()
    templates = []
    for index, spec in enumerate(expect(data.get("templates", []), list, origin.child("templates"),
                                        "templates")):
        where = origin.child("templates", index)
        spec = expect_mapping(spec, where, "a template entry")
        check_keys(spec, where, ROLE_TEMPLATE_KEYS, required=("source", "destination"))
        source = expect(spec["source"], str, where.child("source"), "source")
        if source not in template_files:
            raise where.child("source").error(
                f"template {source!r} not found in roles/{name}/templates/",
                suggest(source, template_files) or "add the file or fix the name")
        destination = expect(spec["destination"], str, where.child("destination"), "destination")
        if not destination.startswith("/") or ".." in destination.split("/") or "//" in destination:
            raise where.child("destination").error(
                f"destination {destination!r} must be an absolute path without '..'",
                "write the whole path, such as /etc/app/app.conf")
        if not destination.startswith(HOST_WRITE_ROOTS):
            raise where.child("destination").error(
                f"destination {destination!r} is outside the places host templates may write",
                f"use a path under {', '.join(r.rstrip('/') for r in HOST_WRITE_ROOTS)}")
        perms = spec.get("perms")
        if perms is not None and not (isinstance(perms, str) and len(perms) in (3, 4)
                                      and all(c in "01234567" for c in perms)):
            raise where.child("perms").error(f"perms {perms!r} must be an octal string such as \"0644\"")
        command = spec.get("command")
        templates.append(RoleTemplate(source=source, destination=destination,
                                      command=expect(command, str, where.child("command"), "command")
                                      if command is not None else None,
                                      perms=perms, origin=where))
    service = data.get("service")
    env_prefix = data.get("env_prefix")
    return Role(
        name=name, file=origin.file, description=str(data.get("description", "")),
        image=expect_mapping(data.get("image"), origin.child("image"), "image"),
        service=expect_mapping(service, origin.child("service"), "service") if service is not None else None,
        templates=tuple(templates),
        env_prefix=expect(env_prefix, str, origin.child("env_prefix"), "env_prefix")
        if env_prefix is not None else None,
        template_files=template_files, test_files=test_files, origin=origin,
        run=expect_command(data["run"], origin.child("run"), "run command") if data.get("run") is not None else (),
    )


# -- environments ------------------------------------------------------------------------------

def _load_environment(root: Path, directory: Path, modules: Collection[str],
                      roles: Collection[str]) -> Environment:
    origin, data = _load_yaml_file(root, directory / "env.yaml")
    name = expect_name(directory.name, origin, "environment")
    check_keys(data, origin, ENV_KEYS)
    providers = expect_mapping(data.get("providers"), origin.child("providers"), "providers")
    for provider, settings in providers.items():
        expect_mapping(settings, origin.child("providers", provider), f"provider {provider!r}")
    state = _backend(data.get("state"), origin.child("state"), STATE_BACKENDS, "state")
    lock = _backend(data.get("lock"), origin.child("lock"), LOCK_BACKENDS, "lock")
    variables = expect_mapping(data.get("variables"), origin.child("variables"), "variables")
    sensitive = frozenset(expect(data.get("sensitive", []), list, origin.child("sensitive"), "sensitive"))
    for secret in sensitive:
        if secret not in variables:
            raise origin.child("sensitive").error(f"sensitive names unknown variable {secret!r}",
                                                  suggest(str(secret), variables))
    instances = []
    for instance_name, spec in expect_mapping(data.get("modules"), origin.child("modules"), "modules").items():
        where = origin.child("modules", instance_name)
        expect_name(instance_name, where, "module instance")
        spec = expect_mapping(spec, where, f"module instance {instance_name!r}")
        check_keys(spec, where, INSTANCE_KEYS, required=("source",))
        source = spec["source"]
        if source not in modules:
            raise where.child("source").error(f"unknown module {source!r}",
                                              suggest(str(source), modules) or "add it under modules/")
        instances.append(ModuleInstance(
            name=instance_name, source=source,
            inputs=expect_mapping(spec.get("inputs"), where.child("inputs"), "inputs"), origin=where))
    env_roles = expect(data.get("roles", []), list, origin.child("roles"), "roles")
    for index, role in enumerate(env_roles):
        if role not in roles:
            raise origin.child("roles", index).error(f"unknown role {role!r}",
                                                     suggest(str(role), roles) or "add it under roles/")
    if len(set(env_roles)) != len(env_roles):
        raise origin.child("roles").error("a role is listed twice")
    images, images_file = _load_images(root, directory, roles)
    policy_skips = _policy_skips(data.get("policy"), origin.child("policy"))
    auto_apply = data.get("auto_apply", False)
    if not isinstance(auto_apply, bool):
        raise origin.child("auto_apply").error("auto_apply must be true or false",
                                               "true: a plan made because an upstream's outputs changed is applied")
    return Environment(
        name=name, file=origin.file, description=str(data.get("description", "")),
        providers=providers, state=state, lock=lock, variables=variables, sensitive_variables=sensitive,
        modules=tuple(instances), roles=tuple(env_roles),
        outputs=expect_mapping(data.get("outputs"), origin.child("outputs"), "outputs"),
        images=images, images_file=images_file,
        image_settings=_image_settings(data.get("images"), origin.child("images")),
        origin=origin, policy_skips=policy_skips, auto_apply=auto_apply,
    )


def _policy_skips(value: Any, origin: Origin) -> dict[str, str]:
    """`policy: {skip: {CKV_AWS_24: "why"}}`: checks this environment does not run, each with
    its written reason (a skip without one is refused)."""
    policy = expect_mapping(value, origin, "policy")
    check_keys(policy, origin, ("skip",))
    skips = expect_mapping(policy.get("skip"), origin.child("skip"), "policy skip")
    for check_id, reason in skips.items():
        if not isinstance(reason, str) or not reason.strip():
            raise origin.child("skip", check_id).error(
                f"skipping {check_id} needs a written reason", f'{check_id}: "why this environment may skip it"')
    return {str(k): str(v) for k, v in skips.items()}


def _image_settings(value: Any, origin: Origin) -> dict[str, Any]:
    """`images: {builder: local, variables: {region: us-east-1}}`: the Packer builder this
    environment's images are built with (`-only`), and Packer variables (`-var`)."""
    settings = expect_mapping(value, origin, "images")
    check_keys(settings, origin, ("builder", "variables"))
    if "builder" in settings:
        expect(settings["builder"], str, origin.child("builder"), "builder")
    variables = expect_mapping(settings.get("variables"), origin.child("variables"), "variables")
    for name, item in variables.items():
        expect(item, (str, int, float, bool), origin.child("variables", name), f"Packer variable {name!r}")
    return settings


def _backend(value: Any, origin: Origin, known: Collection[str], what: str) -> dict[str, Any]:
    settings = expect_mapping(value, origin, what) or {"backend": "local"}
    backend = settings.get("backend", "local")
    if not isinstance(backend, str) or backend not in known:
        raise origin.child("backend").error(f"unknown {what} backend {backend!r}",
                                            suggest(str(backend), known) or f"use one of {', '.join(known)}")
    return {"backend": backend, **settings}


def _load_images(root: Path, directory: Path, roles: Collection[str]) -> tuple[dict[str, str], str | None]:
    path = directory / "images.yaml"
    if not path.exists():
        return {}, None
    origin, data = _load_yaml_file(root, path)
    for role, artefact in data.items():
        if role not in roles:
            raise origin.child(role).error(f"image for unknown role {role!r}", suggest(str(role), roles))
        expect(artefact, str, origin.child(role), f"image id of {role!r}")
    return data, origin.file
