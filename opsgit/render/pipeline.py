"""Render a selection of artefacts and publish them atomically into the build directory."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from opsgit.errors import ConfigError, UserError
from opsgit.render.artefacts import Artefact, Renderer, stable_json
from opsgit.render.configs import ConfigRenderer
from opsgit.render.graph import EnvironmentRenderer
from opsgit.render.images import ImageRenderer
from opsgit.render.jinja import make_environment
from opsgit.repo.schema import suggest
from opsgit.repo.values import Repo

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Selection:
    """Which artefacts to render; None means all of that kind."""

    envs: Sequence[str] | None = None
    roles: Sequence[str] | None = None


def renderers(repo: Repo) -> list[Renderer]:
    """The registry of artefact kinds, in the order they are rendered."""
    render_time = make_environment(repo.root)
    host = make_environment(repo.root, host=True)
    return [ImageRenderer(repo, render_time), EnvironmentRenderer(repo, render_time),
            ConfigRenderer(repo, host)]


def render_selection(repo: Repo, selection: Selection = Selection(), *, workers: int | None = None) -> list[Artefact]:
    """Render the selected artefacts, in a pool of processes when there are many.

    Rendering is CPU-bound Python (Jinja, YAML, reference walking), so threads would not help;
    forked workers inherit the loaded repository and each compiles every template once."""
    _check_names(selection.envs, repo.environments, "environment", "environments/")
    _check_names(selection.roles, repo.roles, "role", "roles/")
    jobs = _jobs(repo, selection)
    workers = workers if workers is not None else _default_workers(len(jobs))
    if workers <= 1:
        return _render_jobs(repo, jobs)
    chunks = [jobs[index::workers] for index in range(workers)]
    context = multiprocessing.get_context("fork")
    global _WORKER_REPO
    _WORKER_REPO = repo
    try:
        with context.Pool(workers) as pool:
            results = pool.map(_render_in_worker, chunks)
    finally:
        _WORKER_REPO = None
    rendered = {(a.kind, a.name): a for chunk in results for a in chunk}
    return [rendered[job] for job in jobs]


_WORKER_REPO: Repo | None = None
PARALLEL_THRESHOLD = 64


def _default_workers(jobs: int) -> int:
    if jobs < PARALLEL_THRESHOLD or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return min(os.cpu_count() or 1, 8)


def _render_in_worker(jobs: list[tuple[str, str]]) -> list[Artefact]:
    assert _WORKER_REPO is not None
    return _render_jobs(_WORKER_REPO, jobs)


def _jobs(repo: Repo, selection: Selection) -> list[tuple[str, str]]:
    jobs: list[tuple[str, str]] = []
    for renderer in renderers(repo):
        wanted = selection.envs if renderer.kind == "graph" else selection.roles
        if renderer.kind != "graph" and selection.envs is not None and selection.roles is None:
            wanted = sorted({role for env in selection.envs for role in repo.environments[env].roles})
        if renderer.kind == "graph" and selection.roles is not None and selection.envs is None:
            wanted = []
        jobs.extend((renderer.kind, name) for name in renderer.names(repo) if wanted is None or name in wanted)
    return jobs


def _render_jobs(repo: Repo, jobs: list[tuple[str, str]]) -> list[Artefact]:
    by_kind = {renderer.kind: renderer for renderer in renderers(repo)}
    return [by_kind[kind].render(name) for kind, name in jobs]


def _check_names(names: Sequence[str] | None, known: Iterable[str], what: str, where: str) -> None:
    for name in names or ():
        if name not in known:
            raise UserError(f"unknown {what} {name!r}", hint=suggest(name, list(known)) or f"see {where}")


def publish(build: Path, artefacts: Sequence[Artefact], *, complete: bool,
            source: Mapping[str, str] | None = None) -> Path:
    """Write every artefact into `build`, each directory replaced whole and only after all of
    them were written to a staging directory beside it; then update the manifest.

    `complete` says that the artefacts are everything the repository renders, so manifest entries
    of artefacts that no longer exist are dropped; `source` then names what was rendered (the git
    content id), so that affected detection can take this render as the merge base's."""
    try:
        build.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=build))
    except OSError as error:
        raise UserError(f"cannot write the build directory: {error.strerror}", file=str(build),
                        hint="check its permissions and free space, or set build_dir in [tool.opsgit]") from None
    try:
        for artefact in artefacts:
            for relative, content in {**artefact.files, **artefact.annotations}.items():
                target = staging / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
        for artefact in artefacts:
            _swap_in(staging / artefact.directory, build / artefact.directory)
        _write_manifest(build, artefacts, complete, source)
    except OSError as error:
        raise UserError(f"cannot write the build directory: {error.strerror}", file=str(build),
                        hint="check its permissions and free space") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return build


def _swap_in(staged: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if target.exists():
        old = target.with_name(f".old-{target.name}-{os.getpid()}")
        os.replace(target, old)
    os.replace(staged, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_manifest(build: Path, artefacts: Sequence[Artefact], complete: bool,
                    source: Mapping[str, str] | None = None) -> None:
    path = build / MANIFEST
    entries: dict[str, dict[str, object]] = {}
    if path.exists() and not complete:
        try:
            entries = {f"{e['kind']}:{e['name']}": e for e in json.loads(path.read_text())["artefacts"]}
        except (ValueError, KeyError, TypeError):
            entries = {}
    for artefact in artefacts:
        entries[f"{artefact.kind}:{artefact.name}"] = artefact.record()
    document: dict[str, object] = {"format": 1, "artefacts": [entries[key] for key in sorted(entries)]}
    if complete and source:
        document["source"] = dict(source)
    temporary = path.with_name(f".{MANIFEST}.{os.getpid()}")
    temporary.write_bytes(stable_json(document))
    os.replace(temporary, path)


def read_manifest(build: Path) -> tuple[dict[str, str], list[dict[str, object]]]:
    """What the last complete render recorded about its source ({} if nothing), and every
    artefact's record; both empty when there is no manifest."""
    path = build / MANIFEST
    try:
        document = json.loads(path.read_text())
        artefacts: list[dict[str, object]] = document["artefacts"]
        source = document.get("source") or {}
        return {str(k): str(v) for k, v in source.items()}, artefacts
    except FileNotFoundError:
        return {}, []
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ConfigError("the build manifest is corrupt", file=str(path), hint="run `opsgit render` again") \
            from None
