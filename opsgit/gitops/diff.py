"""Git, through gitpython: the merge base, the files a change touched, and a commit's files."""

from __future__ import annotations

import os
import subprocess
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


REPOSITORY_INPUTS = ("environments", "modules", "roles", "templates", "policies", "pyproject.toml")


def uncommitted(root: Path) -> list[str]:
    """Files under the repository's inputs with changes not committed (staged, unstaged or
    untracked): affected detection compares commits, so these are not part of what it sees."""
    result = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", *REPOSITORY_INPUTS],
                            cwd=root, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return []
    return sorted(line[3:].strip() for line in result.stdout.splitlines() if len(line) > 3)


def refuse_or_warn_uncommitted(root: Path, posting: bool) -> None:
    """A posted status must describe the commit it is posted on: with uncommitted changes,
    refuse (`posting`) or say that they are not part of the comparison."""
    from opsgit import output

    dirty = uncommitted(root)
    if not dirty:
        return
    listed = ", ".join(dirty[:3]) + (f" and {len(dirty) - 3} more" if len(dirty) > 3 else "")
    if posting:
        raise UserError(f"uncommitted changes in {listed}: statuses would describe a commit without them",
                        hint="commit or stash them first")
    output.warn(f"uncommitted changes in {listed} are not compared: affected detection compares commits")


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


def _git(root: Path, *args: str) -> bytes:
    """Run git with an argument list in the repository of `root`."""
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, check=False)
    if result.returncode != 0:
        raise UserError(f"git {args[0]} failed: {result.stderr.decode(errors='replace').strip()[:200]}")
    return result.stdout


def list_files(root: Path, commit: str, paths: Iterable[str]) -> list[str]:
    """Files of `commit` under the given monorepo paths (one `git ls-tree`, relative to root)."""
    output = _git(root, "ls-tree", "-r", "-z", "--name-only", commit, "--", *paths)
    return [name for name in output.decode("utf-8", "replace").split("\0") if name]


def files_containing(root: Path, commit: str, text: str, pathspec: str) -> list[str]:
    """The files of `commit` matching `pathspec` whose content has `text` (one `git grep`)."""
    result = subprocess.run(["git", "grep", "-l", "-z", "-F", "-e", text, commit, "--", pathspec], cwd=root,
                            capture_output=True, check=False)
    if result.returncode not in (0, 1):  # 1: no file has it
        raise UserError(f"git grep failed: {result.stderr.decode(errors='replace').strip()[:200]}")
    prefix = f"{commit}:"
    return [name[len(prefix):] if name.startswith(prefix) else name
            for name in result.stdout.decode("utf-8", "replace").split("\0") if name]


def read_files(root: Path, commit: str, paths: Iterable[str]) -> dict[str, bytes]:
    """The contents of several files of `commit`, through one `git cat-file --batch`."""
    wanted = list(paths)
    if not wanted:
        return {}
    request = "".join(f"{commit}:./{path}\n" for path in wanted).encode()
    result = subprocess.run(["git", "cat-file", "--batch"], cwd=root, input=request, capture_output=True, check=False)
    if result.returncode != 0:
        raise UserError(f"git cat-file failed: {result.stderr.decode(errors='replace').strip()[:200]}")
    data = memoryview(result.stdout)
    contents: dict[str, bytes] = {}
    position = 0
    for path in wanted:
        end = result.stdout.index(b"\n", position)
        header = bytes(data[position:end]).split()
        position = end + 1
        if len(header) < 3 or header[1] == b"missing":
            continue
        size = int(header[2])
        contents[path] = bytes(data[position:position + size])
        position += size + 1
    return contents


def export_tree(root: Path, commit: str, target: Path, paths: Iterable[str]) -> int:
    """Write the files of `commit` under the given monorepo paths into `target` (one `git
    archive`); returns how many files were written."""
    wanted = list(paths)
    tops = {name.split("/")[0] for name in
            _git(root, "ls-tree", "-z", "--name-only", commit).decode("utf-8", "replace").split("\0") if name}
    existing = [p for p in wanted if p.split("/")[0] in tops]
    nested = [p for p in existing if "/" in p]
    if nested:
        files = list_files(root, commit, nested)
        present = {"/".join(f.split("/")[:depth]) for f in files for depth in range(2, f.count("/") + 2)}
        existing = [p for p in existing if "/" not in p or p in present]
    if not existing:
        return 0
    # git writes the archive and tar unpacks it, both in C: the two commits' exports run truly
    # side by side (Python's tarfile held the GIL and took most of the time)
    with subprocess.Popen(["git", "archive", "--format=tar", commit, "--", *existing], cwd=root,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as archive:
        unpacked = subprocess.run(["tar", "-x", "--no-same-owner", "--no-same-permissions", "-C", str(target)],
                                  stdin=archive.stdout, capture_output=True, check=False)
        failure = archive.stderr.read() if archive.stderr else b""
    if archive.returncode != 0 or unpacked.returncode != 0:
        raise UserError(f"git archive failed: {(failure or unpacked.stderr).decode(errors='replace').strip()[:200]}")
    return _regular_files_only(target)


def _regular_files_only(directory: Path) -> int:
    """Remove what is not a regular file or a directory (a symlink could point out of the tree);
    returns how many files are left."""
    count = 0
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                count += _regular_files_only(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                count += 1
            else:
                os.unlink(entry.path)
    return count


MONOREPO_PATHS = ("environments", "modules", "roles", "templates", "pyproject.toml")


def content_id(root: Path, commit: str = "HEAD") -> str | None:
    """One id for everything a render reads at `commit` (the ids of the monorepo's top-level trees
    and pyproject.toml): equal ids, equal renders. None outside a git repository."""
    import hashlib

    try:
        listing = _git(root, "ls-tree", commit, "--", *MONOREPO_PATHS)
    except (UserError, OSError):
        return None
    return hashlib.sha256(listing).hexdigest()


def worktree_is_clean(root: Path) -> bool:
    """No uncommitted change, tracked or not, to what a render reads."""
    try:
        return not _git(root, "status", "--porcelain", "--", *MONOREPO_PATHS).strip()
    except (UserError, OSError):
        return False
