"""`opsgit validate`: load and render everything in memory, and let Packer check the images."""

from __future__ import annotations

import tempfile
from pathlib import Path

from opsgit import output
from opsgit.config import find_root, load_settings
from opsgit.images.packer import packer_binary, validate_template
from opsgit.render.pipeline import render_selection
from opsgit.repo import load_repo


def validate(root: Path | None = None, packer: bool = True) -> int:
    root = root or find_root()
    repo = load_repo(root, load_settings(root))
    artefacts = render_selection(repo)
    images = [a for a in artefacts if a.kind == "image"]
    binary = packer_binary() if packer else None
    if images and binary:
        with tempfile.TemporaryDirectory(prefix="opsgit-validate-") as scratch:
            # The whole build layout, because image templates read the role bundles beside them.
            for artefact in artefacts:
                for relative, content in artefact.files.items():
                    path = Path(scratch) / relative
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(content)
            for artefact in images:
                validate_template(binary, Path(scratch) / artefact.directory / "packer.json", role=artefact.name)
    elif images and packer:
        output.warn("packer is not installed: image templates were checked by opsgit only "
                    "(install it with `apt-get install packer`)")
    output.say(f"Valid: {len(repo.environments)} environments, {len(repo.modules)} modules, "
               f"{len(repo.roles)} roles"
               + (f"; packer validate passed for {len(images)} image templates" if images and binary else "")
               + ".")
    return 0
