"""Which environments and images a change affects — exactly.

The changed files between the merge base and head name candidates, conservatively (a module
file makes every environment that may instantiate it, directly or through other modules, a
candidate). Each candidate is then rendered at both commits and the bytes it renders to compared:
an edit that renders the same bytes (a comment, whitespace) affects nothing, and nothing whose
output changed is missed. Only candidates are loaded and rendered, so a one-file change costs a
few renders, not the whole monorepo; and the head side of an environment replays every module
instance the merge base's side rendered alike (render/memo.py), so a change to a module every
environment uses costs about one render of them, not two.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from opsgit.config import load_settings
from opsgit.errors import UserError
from opsgit.gitops.diff import Change, changed_files, content_id, export_tree, files_containing, list_files, read_files
from opsgit.gitops.environments import EnvironmentGraph, graph_of_texts
from opsgit.render.artefacts import Renderer, stable_json
from opsgit.render.build import Draft
from opsgit.render.finish import same_rendering
from opsgit.render.graph import EnvironmentRenderer
from opsgit.render.memo import InstanceMemo
from opsgit.render.pipeline import read_manifest, renderers
from opsgit.repo import Repo, load_repo, yamlio
from opsgit.repo.reads import MARK

SOURCE = re.compile(r"""source:\s*["']?([A-Za-z0-9_-]+)""")
TEMPLATE_STATEMENT = re.compile(r"\{%-?\s*(include|import|from|extends)\b")
COMPUTED_SOURCE = re.compile(r"""\bsource["']?\s*:[^\n]*(\{\{|\{%)""")
COMPUTED_KEY = re.compile(r"""(^|[\s{,])["']?\{\{[^}]*\}\}["']?\s*:(\s|$)""", re.MULTILINE)
SHARED = ("pyproject.toml", "modules", "templates")
ENV_FILE = re.compile(r"environments/[^/]+/env\.yaml")
ROLE_FILE = re.compile(r"roles/[^/]+/role\.yaml")


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
    base_from_build: bool = False  # the merge base's hashes came from the build's last complete render
    dependents: tuple[Impact, ...] = ()
    """Environments that read outputs of affected ones (directly or through others) and are not
    affected themselves: action `after`, reasons the affected upstreams. Each needs a plan once
    its upstreams are applied, if an output it reads changed (`apply --plan-dependents`)."""

    def to_json(self) -> dict[str, object]:
        def rows(impacts: Iterable[Impact]) -> list[dict[str, object]]:
            return [{"name": i.name, "action": i.action, "reasons": list(i.reasons)} for i in impacts]
        return {"base": self.base, "head": self.head, "changed_files": list(self.changed),
                "environments": rows(self.environments), "images": rows(self.images), "configs": rows(self.configs),
                "base_from_build": self.base_from_build,
                "dependents": [{"name": i.name, "after": list(i.reasons)} for i in self.dependents],
                "matrix": {"include": [{"env": i.name, "action": i.action} for i in self.environments]}}


@dataclass(frozen=True)
class _Tree:
    """What one commit has: role names, and (when the change needs them) the text of every
    env.yaml and module.yaml."""

    roles: frozenset[str]
    env_texts: Mapping[str, str]
    module_texts: Mapping[str, str]


def _list_tree(root: Path, commit: str) -> list[str]:
    return list_files(root, commit, ["environments", "roles", "modules"])


def _role_names(files: list[str]) -> frozenset[str]:
    return frozenset(f.split("/")[1] for f in files if ROLE_FILE.fullmatch(f))


def _tree(root: Path, commit: str, files: list[str], read_texts: bool) -> _Tree:
    env_texts: dict[str, str] = {}
    module_texts: dict[str, str] = {}
    if read_texts:
        env_files = sorted(f for f in files if ENV_FILE.fullmatch(f))
        modules = [f for f in files if f.startswith("modules/") and f.endswith("/module.yaml") and f.count("/") == 2]
        contents = read_files(root, commit, env_files + modules)
        for path, data in contents.items():
            text = data.decode("utf-8", "replace")
            if path.startswith("environments/"):
                env_texts[path.split("/")[1]] = text
            else:
                module_texts[path.split("/")[1]] = text
    return _Tree(_role_names(files), env_texts, module_texts)


def _opaque(text: str) -> bool:
    """Whether which modules a text instantiates cannot be read off it: a `source:` or a key
    written by Jinja, or a template it includes or imports (which could hold either)."""
    return bool(TEMPLATE_STATEMENT.search(text) or COMPUTED_SOURCE.search(text) or COMPUTED_KEY.search(text))


def _module_closure(env_text: str, module_texts: Mapping[str, str]) -> set[str]:
    """The modules an environment may instantiate, directly or through other modules: every
    module when one of the texts on the way is opaque."""
    if _opaque(env_text):
        return set(module_texts)
    used: set[str] = set()
    pending = SOURCE.findall(env_text)
    while pending:
        name = pending.pop()
        if name in used or name not in module_texts:
            continue
        if _opaque(module_texts[name]):
            return set(module_texts)
        used.add(name)
        pending.extend(SOURCE.findall(module_texts[name]))
    return used


def _reads_templates(env_text: str, modules: set[str], module_texts: Mapping[str, str]) -> bool:
    """Whether an environment's render may read templates/: its env.yaml's values or one of its
    modules include, import or extend one (which may in turn read any other)."""
    return bool(TEMPLATE_STATEMENT.search(env_text)) or any(
        TEMPLATE_STATEMENT.search(module_texts[m]) for m in modules if m in module_texts)


def _candidates(change: Change, tree: _Tree) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    env_reasons: dict[str, set[str]] = {}
    role_reasons: dict[str, set[str]] = {}
    uses = {env: _module_closure(text, tree.module_texts) for env, text in tree.env_texts.items()}
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
            # an environment lists its roles: one added or removed can make it (un)loadable
            for env, text in tree.env_texts.items():
                if parts[1] in text:
                    env_reasons.setdefault(env, set()).add(path)
        elif parts[0] == "templates":
            for role in tree.roles:
                role_reasons.setdefault(role, set()).add(path)
            for env, modules in uses.items():
                if _reads_templates(tree.env_texts[env], modules, tree.module_texts):
                    env_reasons.setdefault(env, set()).add(path)
        elif path == "pyproject.toml":
            for role in tree.roles:  # image templates see [tool.opsgit] org
                role_reasons.setdefault(role, set()).add(path)
    return env_reasons, role_reasons


@dataclass(frozen=True)
class _Work:
    """One worker's share: its artefacts, and where the two commits' files are. Without a base
    directory, the base side's hashes are `known` (a complete render of the merge base)."""

    directories: tuple[Path | None, Path]
    role_names: tuple[frozenset[str], frozenset[str]]
    jobs: tuple[tuple[str, str], ...]
    known: Mapping[tuple[str, str], str] | None = None


# kind, name, exists at head, renders differently at head than at the merge base
_Outcome = tuple[str, str, bool, bool]


def _render_pairs(work: _Work) -> list[_Outcome]:
    """Load just this share's environments and roles at both commits, then render each artefact at
    base and head one after the other: the head side finds every unchanged template compiled and
    every module instance whose module and inputs are unchanged recorded, and replays those."""
    envs = {name for kind, name in work.jobs if kind == "graph"}
    roles = {name for kind, name in work.jobs if kind != "graph"}
    sides: list[tuple[Repo, dict[str, Renderer], dict[str, str]]] = []
    for directory, names in zip(work.directories, work.role_names, strict=True):
        if directory is not None:
            repo, failures = _load_side(directory, envs, roles, names)
            sides.append((repo, {r.kind: r for r in renderers(repo)}, failures))
    results: list[_Outcome] = []
    for kind, name in work.jobs:
        if work.known is not None:
            old, new = work.known.get((kind, name)), _render_one(sides[0], kind, name, None)
            results.append((kind, name, new is not None, old != new))
            continue
        memo = InstanceMemo() if kind == "graph" else None
        before, after = (_render_one(side, kind, name, memo) for side in sides)
        if isinstance(before, Draft) and isinstance(after, Draft):
            changed = not same_rendering(before, after)
        else:
            changed = before != after
        results.append((kind, name, after is not None, changed))
    return results


def _render_one(side: tuple[Repo, dict[str, Renderer], dict[str, str]], kind: str, name: str,
                memo: InstanceMemo | None) -> Draft | str | None:
    """One artefact on one side: with a memo, an environment's draft (compared with the other
    side's by `same_rendering`), else the artefact's hash; None when it does not exist there, and
    `unrenderable: <error>` when it does not render (a change that planning will explain)."""
    repo, by_kind, failures = side
    if kind == "graph" and name in failures:
        return f"unrenderable: {failures[name]}"
    if name not in (repo.environments if kind == "graph" else repo.roles):
        return None
    renderer = by_kind[kind]
    try:
        if memo is not None and isinstance(renderer, EnvironmentRenderer):
            return renderer.draft(name, memo)
        return renderer.render(name).hash
    except UserError as error:
        return f"unrenderable: {error}"


def _load_side(directory: Path, envs: set[str], roles: set[str], role_names: frozenset[str]
               ) -> tuple[Repo, dict[str, str]]:
    """Load one commit's share; an environment that does not load is set aside with its error
    (the others must still be compared)."""
    try:
        return load_repo(directory, only=envs, only_roles=roles, role_names=role_names), {}
    except UserError:
        pass
    failures: dict[str, str] = {}
    good = set()
    for env in envs:
        try:
            load_repo(directory, only={env}, only_roles=set(), role_names=role_names)
            good.add(env)
        except UserError as error:
            failures[env] = str(error)
    return load_repo(directory, only=good, only_roles=roles, role_names=role_names), failures


def _compare(directories: tuple[Path | None, Path], role_names: tuple[frozenset[str], frozenset[str]],
             jobs: list[tuple[str, str]], known: Mapping[tuple[str, str], str] | None = None
             ) -> list[_Outcome]:
    workers = min(os.cpu_count() or 1, 8) if len(jobs) >= 16 else 1
    # Several shares per worker, so that a slow share does not leave the other workers idle.
    count = workers * 4 if workers > 1 else 1
    shares = [_Work(directories, role_names, tuple(jobs[index::count]), known) for index in range(count)]
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            return [row for share in pool.map(_render_pairs, shares) for row in share]
    return [row for share in shares for row in _render_pairs(share)]


def _image_builds(root: Path, change: Change, head_files: list[str]) -> dict[str, set[str]]:
    """Images an environment now builds differently although their templates are the same: its
    env.yaml's `images:` (the Packer builder and variables) changed, or it lists the role anew
    (a new environment lists all its roles anew). Role -> the env.yaml files that say so."""
    paths = [path for path in change.paths if ENV_FILE.fullmatch(path)]
    if not paths:
        return {}
    roles = _role_names(head_files)
    before, after = read_files(root, change.base, paths), read_files(root, change.head, paths)
    builds: dict[str, set[str]] = {}
    for path in paths:
        new = _image_inputs(after.get(path), path)
        if new is None:
            continue  # deleted, or unreadable: the environment itself is affected and says why
        old = _image_inputs(before.get(path), path) or (b"", frozenset())
        for role in sorted(new[1] & roles):
            if new[0] != old[0] or role not in old[1]:
                builds.setdefault(role, set()).add(path)
    return builds


def _image_inputs(data: bytes | None, path: str) -> tuple[bytes, frozenset[str]] | None:
    """An env.yaml's image settings (as stable JSON) and the roles it lists."""
    if data is None:
        return None
    try:
        document = yamlio.parse(data.decode("utf-8", "replace"), path)
    except UserError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("roles", []), list):
        return None
    return stable_json(document.get("images")), frozenset(str(role) for role in document.get("roles", []))


def _policy_changes(root: Path, change: Change, head_files: list[str]) -> dict[str, set[str]]:
    """Environments whose plans' policy verdicts can change although their graphs do not: the
    policy checks (`policies/`) or `[tool.opsgit.policy]` changed (every environment), or an
    env.yaml's `policy:` skips did. Environment -> the files that say so."""
    environments = sorted({f.split("/")[1] for f in head_files if ENV_FILE.fullmatch(f)})
    everywhere = {p for p in change.paths if p.startswith("policies/")}
    if "pyproject.toml" in change.paths:
        before, after = read_files(root, change.base, ["pyproject.toml"]), read_files(root, change.head,
                                                                                     ["pyproject.toml"])
        if _policy_table(before.get("pyproject.toml")) != _policy_table(after.get("pyproject.toml")):
            everywhere.add("pyproject.toml")
    reasons = {env: set(everywhere) for env in environments} if everywhere else {}
    paths = [p for p in change.paths if ENV_FILE.fullmatch(p) and p in head_files]
    if paths:
        before, after = read_files(root, change.base, paths), read_files(root, change.head, paths)
        for path in paths:
            if _policy_section(before.get(path), path) != _policy_section(after.get(path), path):
                reasons.setdefault(path.split("/")[1], set()).add(path)
    return reasons


def _policy_table(data: bytes | None) -> bytes:
    import tomllib

    try:
        table = tomllib.loads((data or b"").decode("utf-8", "replace")).get("tool", {}).get("opsgit", {})
    except tomllib.TOMLDecodeError:
        return b"unreadable"
    return stable_json(table.get("policy"))


def _policy_section(data: bytes | None, path: str) -> bytes:
    if data is None:
        return b""
    try:
        document = yamlio.parse(data.decode("utf-8", "replace"), path)
    except UserError:
        return b"unreadable"
    return stable_json(document.get("policy")) if isinstance(document, dict) else b""


def _export(root: Path, commit: str, directory: Path, paths: list[str]) -> None:
    directory.mkdir()
    export_tree(root, commit, directory, paths)


def _scratch_parent(root: Path) -> Path:
    """Where the two commits' files are written: a tmpfs when there is one (thousands of small
    files), else the build directory, on the repository's own file system."""
    shared_memory = Path("/dev/shm")
    if shared_memory.is_dir() and os.access(shared_memory, os.W_OK):
        return shared_memory
    build = load_settings(root).build_path
    build.mkdir(parents=True, exist_ok=True)
    return build


def base_render(root: Path, base: str) -> dict[tuple[str, str], str] | None:
    """The artefact hashes of the build directory's last complete render, when it rendered
    exactly the merge base's content with this opsgit (CI renders main after each merge): the
    base side then needs no second render. None otherwise."""
    from opsgit import __version__

    try:
        source, artefacts = read_manifest(load_settings(root).build_path)
    except UserError:
        return None
    if not source or source.get("opsgit") != __version__ or source.get("content") != content_id(root, base):
        return None
    return {(str(entry["kind"]), str(entry["name"])): str(entry["hash"]) for entry in artefacts}


def affected(root: Path, base: str, head: str = "HEAD") -> Affected:
    change = changed_files(root, base, head)
    if not change.paths:
        return Affected(change.base, change.head, ())
    # git does the work of these steps, so the two commits' run side by side
    with ThreadPoolExecutor(max_workers=2) as pool:
        head_listing = pool.submit(_list_tree, root, change.head)
        base_files = _list_tree(root, change.base)
        head_files = head_listing.result()
        # the texts are needed to see which environments a shared file or a role's coming or going reaches
        roles_changed = {f for f in head_files if f.startswith("roles/")} != \
            {f for f in base_files if f.startswith("roles/")}
        read_texts = roles_changed or any(p.startswith(("modules/", "templates/")) for p in change.paths)
        head_reading = pool.submit(_tree, root, change.head, head_files, read_texts)
        image_builds = pool.submit(_image_builds, root, change, head_files)
        policy_changes = pool.submit(_policy_changes, root, change, head_files)
        base_tree = _tree(root, change.base, base_files, read_texts)
        head_tree = head_reading.result()
        builds = image_builds.result()
        policies = policy_changes.result()
    env_reasons, role_reasons = _candidates(change, head_tree)
    more_envs, more_roles = _candidates(change, base_tree)
    for env, reasons in more_envs.items():
        env_reasons.setdefault(env, set()).update(reasons)
    for role, reasons in more_roles.items():
        role_reasons.setdefault(role, set()).update(reasons)
    order = _environment_graph(root, change.head, head_files)
    # a dependent renders against the outputs its upstream's env.yaml declares: one removed or
    # renamed there changes whether the dependent renders at all
    for path in change.paths:
        parts = path.split("/")
        if len(parts) == 3 and parts[0] == "environments" and parts[2] == "env.yaml" and parts[1] in order.names:
            for dependent in order.dependents(parts[1]):
                env_reasons.setdefault(dependent, set()).add(path)
    base_order = _environment_graph(root, change.base, base_files)
    upstreams = {f"environments/{u}/env.yaml" for e in env_reasons for g in (order, base_order)
                 if e in g.names for u in g.upstreams(e)}
    needed = [*SHARED, *(f"environments/{e}" for e in sorted(env_reasons)),
              *(f"roles/{r}" for r in sorted(role_reasons)), *sorted(upstreams)]

    known = base_render(root, change.base)
    with tempfile.TemporaryDirectory(prefix="opsgit-affected-", dir=_scratch_parent(root)) as scratch:
        base_directory, head_directory = Path(scratch) / "base", Path(scratch) / "head"
        # with a complete render of the merge base, its hashes are known and its files not needed
        exports = [(head_directory, change.head)] + ([(base_directory, change.base)] if known is None else [])
        with ThreadPoolExecutor(max_workers=2) as pool:
            for exported in [pool.submit(_export, root, commit, directory, needed) for directory, commit in exports]:
                exported.result()  # raises the first failure
        jobs = [("graph", env) for env in sorted(env_reasons)]
        jobs += [(kind, role) for role in sorted(role_reasons) for kind in ("image", "config")]
        compared = _compare((None if known is not None else base_directory, head_directory),
                            (base_tree.roles, head_tree.roles), jobs, known)
    outcomes = {(kind, name): (after, changed) for kind, name, after, changed in compared}
    environments = []
    for env in sorted(set(env_reasons) | set(policies)):
        exists, changed = outcomes.get(("graph", env), (True, False))
        if changed:
            environments.append(Impact(env, "plan" if exists else "destroy", tuple(sorted(env_reasons[env]))))
        elif env in policies:  # the same graph, another verdict: planned again for its policy checks
            environments.append(Impact(env, "plan", tuple(sorted(policies[env] | env_reasons.get(env, set())))))
    images: list[Impact] = []
    configs: list[Impact] = []
    for role in sorted(set(role_reasons) | set(builds)):
        for kind, bucket in (("image", images), ("config", configs)):
            exists, changed = outcomes.get((kind, role), (True, False))
            reasons = role_reasons.get(role, set()) if changed else set()
            if kind == "image":
                reasons = reasons | builds.get(role, set())
            if reasons:
                bucket.append(Impact(role, "build" if exists else "delete", tuple(sorted(reasons))))
    planned = [i.name for i in environments]
    dependents = tuple(
        Impact(env, "after", tuple(u for u in order.order(planned) if env in order.all_dependents([u])))
        for env in order.order(order.all_dependents(planned)))
    return Affected(change.base, change.head, tuple(sorted(change.paths)), tuple(environments), tuple(images),
                    tuple(configs), known is not None, dependents)


def _environment_graph(root: Path, commit: str, files: list[str]) -> EnvironmentGraph:
    """Which environment reads which at `commit`: only the env.yaml files that mention another
    environment's outputs are read (git finds them), so a monorepo where few do pays little."""
    names = [f.split("/")[1] for f in files if ENV_FILE.fullmatch(f)]
    readers = [f for f in files_containing(root, commit, MARK, "environments/*/env.yaml") if ENV_FILE.fullmatch(f)]
    contents = read_files(root, commit, readers)
    return graph_of_texts({path.split("/")[1]: data.decode("utf-8", "replace") for path, data in contents.items()},
                          names)
