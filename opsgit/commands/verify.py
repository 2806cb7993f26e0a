"""`opsgit verify --role ROLE [--hosts local://|ssh://…|docker://…] [--env ENV] [--root DIR]`
(`invoke verify`): the role's testinfra tests; the exit code is pytest's."""

from __future__ import annotations

from opsgit.commands.base import Arg, Command
from opsgit.commands.image import DEFAULT_ENV, resolve_role


def verify(role: str | None = None, hosts: str = "local://", *, env: str | None = None,
           root: str | None = None) -> int:
    from opsgit import output
    from opsgit.config import find_root, load_settings
    from opsgit.errors import UserError
    from opsgit.images.verify import run_role_tests
    from opsgit.repo import load_repo
    from opsgit.repo.schema import suggest

    role = resolve_role(role)
    repo_root = find_root()
    settings = load_settings(repo_root)
    repo = load_repo(repo_root, settings, only=set(), only_roles={role})
    if role not in repo.roles:
        names = sorted(p.name for p in (repo_root / "roles").iterdir() if p.is_dir())
        raise UserError(f"unknown role {role!r}", hint=suggest(role, names) or f"roles: {', '.join(names)}")
    if not repo.roles[role].test_files:
        raise UserError(f"role {role!r} has no tests", file=f"roles/{role}/tests/",
                        hint="add testinfra tests as roles/<role>/tests/test_*.py")
    image_root = root
    if image_root is None:
        if hosts.startswith("local://"):
            built = settings.build_path / "artefacts" / (env or DEFAULT_ENV) / role / "root"
            if not built.is_dir():
                raise UserError(f"no local build of {role} for {env or DEFAULT_ENV} to test at {built}",
                                hint=f"build it first: HC_ROLE={role} invoke image --env {env or DEFAULT_ENV}, "
                                     "or pass --root / to test this machine")
            image_root = str(built)
        else:
            image_root = "/"
    output.say(f"Verifying {role} on {hosts} (image root {image_root}) with roles/{role}/tests/ ...")
    return run_role_tests(repo_root / "roles" / role / "tests", hosts, image_root, role, repo_root)


COMMANDS = (Command(
    "verify", "run a role's testinfra tests (roles/<role>/tests/) against hosts", lambda a: verify(
        a.role, a.hosts, env=a.env, root=a.root), args=(
        Arg("--role", "the role (default: $HC_ROLE)", metavar="ROLE"),
        Arg("--hosts", "testinfra hosts: local://, ssh://user@host, docker://container (default local://)",
            default="local://", metavar="HOSTS"),
        Arg("--env", "with local://, test the image root of this environment's last local build (default: dev)",
            metavar="ENV"),
        Arg("--root", "the directory the image's files are under (default: the last local build's root for "
            "local://, / otherwise)", metavar="DIR"),
    )),)
