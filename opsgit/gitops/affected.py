"""Which environments and images a change affects — exactly.

The changed files between the merge base and head name candidates, conservatively (a module
file makes every environment that uses it, directly or through other modules, a candidate).
Each candidate is then rendered at both commits and its content hash compared: an edit that
renders the same bytes (a comment, whitespace) affects nothing, and nothing whose output changed
is missed. Only candidates are loaded and rendered, so a one-file change costs a few renders,
not the whole monorepo.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from opsgit.gitops.diff import Change, changed_files, export_tree, open_repository, resolve
from opsgit.render.pipeline import renderers
from opsgit.repo import load_repo

SOURCE = re.compile(r"""source:\s*["']?([A-Za-z0-9_-]+)""")
SHARED = ("pyproject.toml", "modules/", "roles/", "templates/")


@dataclass(frozen=True)
class Impact:
    name: str
    action: str  # plan, destroy
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Affected:
    base: str
    head: str
    changed: tuple[str, ...]
    environments: tuple[Impact, ...] = ()
    images: tuple[Impact, ...] = ()
    configs: tuple[Impact, ...] = ()

    def to_json(self) -> dict[str, object]:
        def rows(impacts: Iterable[Impact]) -> list[dict[str, object]]:
            return [{"name": i.name, "action": i.action, "reasons": list(i.reasons)} for i in impacts]
        return {"base": self.base, "head": self.head, "changed_files": list(self.changed),
                "environments": rows(self.environments), "images": rows(self.images), "configs": rows(self.configs),
                "matrix": {"include": [{"env": i.name, "action": i.action} for i in self.environments]}}


@dataclass
class _Side:
    commit: str
    directory: Path
    envs: set[str] = field(default_factory=set)
    roles: set[str] = field(default_factory=set)


def _tree_names(root: Path, commit: str) -> tuple[set[str], set[str], dict[str, str], dict[str, str]]:
    """Environment and role names at a commit, and the text of each env.yaml and module.yaml."""
    repository = open_repository(root)
    tree = resolve(repository, commit, "commit").tree  # type: ignore[attr-defined]
    top = Path(repository.working_tree_dir).resolve()  # type: ignore[attr-defined]
    inside = root.resolve().relative_to(top).as_posix()
    prefix = "" if inside == "." else inside + "/"
    envs, roles, env_texts, module_texts = set(), set(), {}, {}
    for blob in tree.traverse():
        if blob.type != "blob" or not blob.path.startswith(prefix):
            continue
        parts = blob.path[len(prefix):].split("/")
        if len(parts) == 3 and parts[0] == "environments" and parts[2] == "env.yaml":
            envs.add(parts[1])
            env_texts[parts[1]] = blob.data_stream.read().decode("utf-8", "replace")
        elif len(parts) == 3 and parts[0] == "roles" and parts[2] == "role.yaml":
            roles.add(parts[1])
        elif len(parts) == 3 and parts[0] == "modules" and parts[2] == "module.yaml":
            module_texts[parts[1]] = blob.data_stream.read().decode("utf-8", "replace")
    return envs, roles, env_texts, module_texts


def _module_closure(env_text: str, module_texts: dict[str, str]) -> set[str]:
    used: set[str] = set()
    pending = SOURCE.findall(env_text)
    while pending:
        name = pending.pop()
        if name in used or name not in module_texts:
            continue
        used.add(name)
        pending.extend(SOURCE.findall(module_texts[name]))
    return used


def _candidates(change: Change, names: tuple[set[str], set[str], dict[str, str], dict[str, str]]
                ) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    _envs, roles, env_texts, module_texts = names
    env_reasons: dict[str, set[str]] = {}
    role_reasons: dict[str, set[str]] = {}
    uses = {env: _module_closure(text, module_texts) for env, text in env_texts.items()}
    for path in sorted(change.paths):
        parts = path.split("/")
        if parts[0] == "environments" and len(parts) > 2:
            env_reasons.setdefault(parts[1], set()).add(path)
        elif parts[0] == "modules" and len(parts) > 2:
            for env, modules in uses.items():
                if parts[1] in modules:
                    env_reasons.setdefault(env, set()).add(path)
        elif parts[0] == "roles" and len(parts) > 2:
            role_reasons.setdefault(parts[1], set()).add(path)
        elif parts[0] == "templates":
            name = "/".join(parts[1:])
            for role in roles:
                role_reasons.setdefault(role, set()).add(path)
            for env, modules in uses.items():
                if any(name in module_texts.get(m, "") for m in modules):
                    env_reasons.setdefault(env, set()).add(path)
    return env_reasons, role_reasons


def _hashes(side: _Side, envs: set[str], roles: set[str]) -> dict[tuple[str, str], str]:
    present_envs = envs & side.envs
    if not present_envs and not (roles & side.roles):
        return {}
    repo = load_repo(side.directory, only=present_envs)
    hashes = {}
    for renderer in renderers(repo):
        wanted = present_envs if renderer.kind == "graph" else roles & side.roles
        for name in sorted(wanted):
            hashes[(renderer.kind, name)] = renderer.render(name).hash
    return hashes


def affected(root: Path, base: str, head: str = "HEAD") -> Affected:
    change = changed_files(root, base, head)
    if not change.paths:
        return Affected(change.base, change.head, ())
    head_names = _tree_names(root, change.head)
    base_names = _tree_names(root, change.base)
    env_reasons, role_reasons = _candidates(change, head_names)
    more_envs, more_roles = _candidates(change, base_names)
    for env, reasons in more_envs.items():
        env_reasons.setdefault(env, set()).update(reasons)
    for role, reasons in more_roles.items():
        role_reasons.setdefault(role, set()).update(reasons)
    with tempfile.TemporaryDirectory(prefix="opsgit-affected-") as scratch:
        sides = []
        for label, commit, names in (("base", change.base, base_names), ("head", change.head, head_names)):
            directory = Path(scratch) / label
            directory.mkdir()
            wanted = [*SHARED, *(f"environments/{e}/" for e in env_reasons)]
            export_tree(root, commit, directory, wanted)
            sides.append(_Side(commit, directory, envs=set(env_reasons) & names[0], roles=names[1]))
        before = _hashes(sides[0], set(env_reasons), set(role_reasons))
        after = _hashes(sides[1], set(env_reasons), set(role_reasons))
    environments = []
    for env in sorted(env_reasons):
        old, new = before.get(("graph", env)), after.get(("graph", env))
        if old == new:
            continue
        environments.append(Impact(env, "destroy" if new is None else "plan", tuple(sorted(env_reasons[env]))))
    images: list[Impact] = []
    configs: list[Impact] = []
    for role in sorted(role_reasons):
        for kind, bucket in (("image", images), ("config", configs)):
            old, new = before.get((kind, role)), after.get((kind, role))
            if old != new:
                bucket.append(Impact(role, "delete" if new is None else "build", tuple(sorted(role_reasons[role]))))
    return Affected(change.base, change.head, tuple(sorted(change.paths)), tuple(environments), tuple(images),
                    tuple(configs))
