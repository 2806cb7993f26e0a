"""The invoke collection a monorepo's tasks.py imports: `from opsgit.tasks import ns`.

Each task parses its flags and calls exactly one command function.
"""

from __future__ import annotations

from collections.abc import Callable

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from opsgit.error_handler import run_guarded


def _run(action: Callable[[], int]) -> None:
    code = run_guarded(action)
    if code != 0:
        raise Exit(code=code)


@task(iterable=["env", "role"], help={"env": "only this environment (repeatable)",
                                      "role": "only this role (repeatable)",
                                      "json": "print the artefacts as JSON"})
def render(c: Context, env: list[str] | None = None, role: list[str] | None = None, json: bool = False) -> None:
    """Render image templates, environment graphs and role bundles into the build directory."""
    from opsgit.commands.render import render as command
    _run(lambda: command(envs=env or [], roles=role or [], as_json=json))


@task(help={"no_packer": "skip `packer validate`"})
def validate(c: Context, no_packer: bool = False) -> None:
    """Check that the whole repository renders, and run `packer validate` on every image template."""
    from opsgit.commands.validate import validate as command
    _run(lambda: command(packer=not no_packer))


@task(iterable=["target"], help={"env": "the environment", "target": "only this address (repeatable)",
                                 "destroy": "plan to destroy everything", "refresh_only": "only refresh the state",
                                 "json": "print the plan as JSON", "affected": "plan what the git change affects",
                                 "base": "with --affected: the ref to compare with", "status": "post commit statuses"})
def plan(c: Context, env: str = "", target: list[str] | None = None, destroy: bool = False,
         refresh_only: bool = False, json: bool = False, affected: bool = False, base: str = "",
         status: bool = False) -> None:
    """Plan one environment (--env) or every affected one (--affected --base origin/main --status)."""
    if affected:
        from opsgit.commands.plan_affected import plan_affected
        _run(lambda: plan_affected(base or None, status=status))
        return
    if not env:
        raise Exit("error: plan needs --env ENV or --affected", code=1)
    from opsgit.commands.plan import plan as command
    _run(lambda: command(env, targets=target or [], destroy=destroy, refresh_only=refresh_only, as_json=json))


@task(help={"env": "the environment", "plan": "the saved plan (default: the one `invoke plan` saved)",
            "auto_approve": "plan afresh and apply without asking when there is no saved plan"})
def apply(c: Context, env: str, plan: str = "", auto_approve: bool = False) -> None:
    """Apply the saved plan of an environment under its run lock."""
    from pathlib import Path

    from opsgit.commands.apply import apply as command
    from opsgit.engine.workspace import open_workspace

    def action() -> int:
        saved = Path(plan) if plan else open_workspace(env).plan_path
        return command(env, saved if saved.exists() else None, auto_approve=auto_approve)
    _run(action)


@task(help={"env": "the environment"})
def drift(c: Context, env: str) -> None:
    """Show what changed outside opsgit (exit 2 when something did)."""
    from opsgit.commands.drift import drift as command
    _run(lambda: command(env))


@task(help={"env": "the environment", "force": "remove without asking"})
def unlock(c: Context, env: str, force: bool = False) -> None:
    """Show who holds an environment's run lock, and remove it."""
    from opsgit.commands.unlock import unlock as command
    _run(lambda: command(env, force=force))


@task(iterable=["var"], help={"role": "the role (default: $HC_ROLE)",
                               "env": "whose images: settings apply (default dev)",
                               "only": "the Packer builder", "var": "NAME=VALUE for a declared Packer variable",
                               "promote": "write the image id into environments/<env>/images.yaml",
                               "dry_run": "render and show the packer command only"})
def image(c: Context, role: str = "", env: str = "", only: str = "", var: list[str] | None = None,
          promote: bool = False, dry_run: bool = False) -> None:
    """Build a role's image with the one Packer template (HC_ROLE=binstore invoke image)."""
    from opsgit.commands.image import image as command
    _run(lambda: command(role or None, env or None, only=only or None, variables=var or [], promote=promote,
                         dry_run=dry_run))


@task(help={"role": "the role (default: $HC_ROLE)", "hosts": "local://, ssh://user@host or docker://name",
            "env": "with local://, the environment whose local build to test (default dev)",
            "root": "the directory the image's files are under"})
def verify(c: Context, role: str = "", hosts: str = "local://", env: str = "", root: str = "") -> None:
    """Run a role's testinfra tests against hosts (a local build with local://)."""
    from opsgit.commands.verify import verify as command
    _run(lambda: command(role or None, hosts, env=env or None, root=root or None))


ns = Collection(render, validate, plan, apply, drift, unlock, image, verify)
