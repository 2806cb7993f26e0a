"""Git, through gitpython: the merge base, the files a change touched, and a commit's files."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from opsgit.errors import UserError


@dataclass(frozen=True)
class Change:
    """Files touched between the merge base and head (renames count on both sides)."""

    base: str
    head: str
    paths: frozenset[str]


def open_repository(root: Path) -> object:
    import git

    try:
        return git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UserError(f"{root} is not in a git repository", hint="affected detection compares git commits") from None


def resolve(repository: object, ref: str, what: str) -> object:
    import git

    try:
        return repository.commit(ref)  # type: ignore[attr-defined]
    except (git.BadName, ValueError, git.GitCommandError):
        raise UserError(f"{what} {ref!r} does not exist in this repository",
                        hint="fetch it first (git fetch origin main), or name a branch, tag or commit") from None


def changed_files(root: Path, base: str, head: str = "HEAD") -> Change:
    repository = open_repository(root)
    head_commit = resolve(repository, head, "head")
    base_commit = resolve(repository, base, "base")
    bases = repository.merge_base(base_commit, head_commit)  # type: ignore[attr-defined]
    if not bases:
        shallow = Path(repository.git_dir, "shallow").exists()  # type: ignore[attr-defined]
        raise UserError(f"{base} and {head} have no common ancestor" + (" in this shallow clone" if shallow else ""),
                        hint="fetch more history: git fetch --unshallow (or actions/checkout with fetch-depth: 0)")
    merge_base = bases[0]
    paths: set[str] = set()
    for item in merge_base.diff(head_commit, R=False):
        for path in (item.a_path, item.b_path):
            if path:
                paths.add(path)
    prefix = _prefix(repository, root)
    relative = {p[len(prefix):] for p in paths if p.startswith(prefix)}
    return Change(base=merge_base.hexsha, head=head_commit.hexsha, paths=frozenset(relative))  # type: ignore[attr-defined]


def _prefix(repository: object, root: Path) -> str:
    top = Path(repository.working_tree_dir).resolve()  # type: ignore[attr-defined]
    inside = root.resolve().relative_to(top).as_posix()
    return "" if inside == "." else inside + "/"


def export_tree(root: Path, commit: str, target: Path, wanted: Iterable[str]) -> set[str]:
    """Write the files of `commit` under the monorepo root whose paths start with one of `wanted`
    into `target`; returns the paths written."""
    repository = open_repository(root)
    tree = resolve(repository, commit, "commit").tree  # type: ignore[attr-defined]
    prefix = _prefix(repository, root)
    prefixes = tuple(wanted)
    written = set()
    for blob in tree.traverse():
        if blob.type != "blob" or not blob.path.startswith(prefix):
            continue
        path = blob.path[len(prefix):]
        if not path.startswith(prefixes):
            continue
        destination = target / path
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(blob.data_stream.read())
        written.add(path)
    return written
