"""`opsgit validate`: load and render everything in memory, and let Packer check the images."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from opsgit.commands.base import Arg, Command

if TYPE_CHECKING:
    from opsgit.repo.values import Environment


def validate(root: Path | None = None, packer: bool = True) -> int:
    import concurrent.futures
    import tempfile

    from opsgit import output
    from opsgit.config import find_root, load_settings
    from opsgit.images.packer import packer_binary
    from opsgit.render.pipeline import render_selection
    from opsgit.repo import load_repo

    root = root or find_root()
    repo = load_repo(root, load_settings(root))
    artefacts = render_selection(repo)
    images = [a for a in artefacts if a.kind == "image"]
    binary = packer_binary() if packer else None
    builds = 0
    if images and binary:
        with tempfile.TemporaryDirectory(prefix="opsgit-validate-") as scratch:
            # The whole build layout, because image templates read the role bundles beside them.
            for artefact in artefacts:
                for relative, content in artefact.files.items():
                    path = Path(scratch) / relative
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(content)
            # One `packer validate` per template, and one per environment that builds it with its
            # builder and variables; each is a separate process, so they run side by side.
            runs: list[tuple[Path, str, Environment | None]] = []
            for artefact in images:
                template = Path(scratch) / artefact.directory / "packer.json"
                runs.append((template, artefact.name, None))
                runs += [(template, artefact.name, e) for e in repo.environments.values() if artefact.name in e.roles]
            with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
                for future in [pool.submit(_validate_one, binary, *run) for run in runs]:
                    future.result()
            builds = sum(1 for run in runs if run[2] is not None)
    elif images and packer:
        output.warn("packer is not installed: image templates were checked by opsgit only "
                    "(install it with `apt-get install packer`)")
    plural = output.plural
    output.say(f"Valid: {plural(len(repo.environments), 'environment')}, {plural(len(repo.modules), 'module')}, "
               f"{plural(len(repo.roles), 'role')}"
               + (f"; packer validate passed for {plural(len(images), 'image template')} and "
                  f"{plural(builds, 'environment build')}"
                  if images and binary else "")
               + ".")
    return 0


def _validate_one(binary: str, template: Path, role: str, environment: Environment | None) -> None:
    from opsgit.images.packer import environment_inputs, validate_template
    from opsgit.render.images import TEMPLATE

    if environment is None:
        validate_template(binary, template, role)
        return
    builder, variables = environment_inputs(json.loads(template.read_text()), environment, (), None, TEMPLATE)
    validate_template(binary, template, role, environment.name, builder, variables)


COMMANDS = (Command(
    "validate", "check the whole repository renders, and run `packer validate` on every image template",
    lambda a: validate(packer=not a.no_packer), args=(Arg("--no-packer", "skip `packer validate`", kind="bool"),)),)
