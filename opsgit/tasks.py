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


ns = Collection(render, validate)
