"""The real `packer` binary, run from argument lists on a rendered template, and what it built.

Packer's JSON templates accept any `-var` silently, and a typo there builds the wrong image: the
variables opsgit passes are checked against the template's declared ones first. The manifest
post-processor appends to its file across runs, so only the builds of the last run (their
`packer_run_uuid` equal to `last_run_uuid`) are this build's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsgit import output
from opsgit.errors import ToolError, UserError
from opsgit.repo.schema import suggest
from opsgit.repo.values import Environment

INSTALL_HINT = ("install it: `sudo apt-get install packer` (Debian), `make packer` in the opsgit "
                "repository, or https://developer.hashicorp.com/packer/install")


@dataclass(frozen=True)
class PackerVariable:
    name: str
    value: str
    source: str
    """Where the value came from, for the error naming a variable the template does not declare."""


@dataclass(frozen=True)
class BuiltArtefact:
    builder: str
    builder_type: str
    artifact_id: str
    files: tuple[str, ...]
    run_uuid: str
    build_time: int


def packer_binary() -> str | None:
    return os.environ.get("OPSGIT_PACKER") or shutil.which("packer")


def require_packer() -> str:
    binary = packer_binary()
    if not binary:
        raise ToolError("packer is not installed (or not on PATH)", hint=INSTALL_HINT)
    return binary


def packer_environment(role: str) -> dict[str, str]:
    environment = dict(os.environ)
    environment.setdefault("CHECKPOINT_DISABLE", "1")
    environment["HC_ROLE"] = role
    return environment


def validate_template(binary: str, template: Path, role: str, env: str | None = None,
                      builder: str | None = None, variables: Sequence[PackerVariable] = ()) -> None:
    """`packer validate` the rendered template (as one environment builds it, when given);
    Packer's complaint becomes the error message."""
    argv = [binary, "validate", *([f"-only={builder}"] if builder else [])]
    for variable in variables:
        argv += ["-var", f"{variable.name}={variable.value}"]
    result = subprocess.run([*argv, template.name], cwd=template.parent, capture_output=True,
                            text=True, env=packer_environment(role), timeout=120, check=False)
    if result.returncode != 0:
        detail = " ".join((result.stdout + result.stderr).split())
        where = f"role {role!r}" + (f" in environment {env}" if env else "")
        raise ToolError(f"packer validate rejected the image template of {where}: {detail[:400]}",
                        file="templates/packer.json.j2")


def declared_variables(template: Mapping[str, Any]) -> set[str]:
    variables = template.get("variables") or {}
    return set(variables) if isinstance(variables, dict) else set()


def builder_names(template: Mapping[str, Any]) -> list[str]:
    return [str(b.get("name") or b.get("type")) for b in template.get("builders") or [] if isinstance(b, dict)]


def check_variables(template: Mapping[str, Any], variables: Sequence[PackerVariable], template_file: str) -> None:
    declared = declared_variables(template)
    for variable in variables:
        if variable.name not in declared:
            raise UserError(f"Packer variable {variable.name!r} (from {variable.source}) is not declared in "
                            f"{template_file}'s \"variables\"",
                            hint=suggest(variable.name, declared) or f"declared: {', '.join(sorted(declared))}")


def check_builder(template: Mapping[str, Any], builder: str, source: str, template_file: str) -> None:
    names = builder_names(template)
    if builder not in names:
        raise UserError(f"builder {builder!r} (from {source}) is not in {template_file}",
                        hint=suggest(builder, names) or f"builders: {', '.join(names)}")


def build_command(packer: str, template: Path, builder: str | None,
                  variables: Sequence[PackerVariable]) -> list[str]:
    argv = [packer, "build", "-color=false"]
    if builder:
        argv.append(f"-only={builder}")
    for variable in variables:
        argv += ["-var", f"{variable.name}={variable.value}"]
    return [*argv, str(template)]


def run_build(argv: Sequence[str], workdir: Path, env: Mapping[str, str], label: str) -> None:
    """Run `packer build`, streaming its output line by line with the elapsed time."""
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        process = subprocess.Popen(list(argv), cwd=workdir, env=dict(env), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace")
    except FileNotFoundError:
        raise ToolError("packer is not installed (or not on PATH)", hint=INSTALL_HINT) from None
    assert process.stdout is not None
    for line in process.stdout:
        text = line.rstrip("\n")
        if text.strip():
            output.say(f"{output.paint(f'{label} {time.monotonic() - started:5.1f}s', 'dim')} | {text}")
    code = process.wait()
    if code != 0:
        raise ToolError(f"packer build failed for {label} (exit {code}); no image was recorded",
                        hint="see Packer's output above")


def last_run_builds(manifest: Path) -> list[BuiltArtefact]:
    try:
        document = json.loads(manifest.read_text())
    except FileNotFoundError:
        raise ToolError(f"packer wrote no manifest at {manifest}",
                        hint="add the manifest post-processor (\"output\": \"manifest.json\") to the template") \
            from None
    except ValueError as error:
        raise ToolError(f"cannot read Packer's manifest {manifest}: {error}") from None
    run = document.get("last_run_uuid")
    builds = [BuiltArtefact(builder=str(b.get("name", "")), builder_type=str(b.get("builder_type", "")),
                            artifact_id=str(b.get("artifact_id") or ""),
                            files=tuple(str(f["name"]) for f in b.get("files") or [] if isinstance(f, dict)),
                            run_uuid=str(b.get("packer_run_uuid")), build_time=int(b.get("build_time") or 0))
              for b in document.get("builds", []) if isinstance(b, dict) and b.get("packer_run_uuid") == run]
    if not builds:
        raise ToolError(f"Packer's manifest {manifest} has no build from the last run",
                        hint="is the manifest post-processor limited to other builders with \"only\"?")
    return builds


def image_id(build: BuiltArtefact, workdir: Path, role: str, region: str | None) -> str:
    """The id an environment refers to. An AMI build's `region:ami,region:ami` gives the AMI of
    the environment's region; a build of files (the local builder) is named by their content."""
    if build.artifact_id and build.artifact_id != "Null":
        per_region = dict(part.split(":", 1) for part in build.artifact_id.split(",") if ":" in part)
        if not per_region:
            return build.artifact_id
        if region and region in per_region:
            return per_region[region]
        return next(iter(per_region.values()))
    if not build.files:
        raise ToolError(f"builder {build.builder!r} produced neither an artifact id nor files",
                        hint="add an artifice post-processor naming the files it builds")
    digest = hashlib.sha256()
    for name in sorted(build.files):
        digest.update(name.encode() + b"\0" + hashlib.sha256((workdir / name).read_bytes()).digest())
    return f"local-{role}-{digest.hexdigest()[:12]}"



def environment_inputs(template: Mapping[str, Any], environment: Environment | None, cli_vars: Sequence[str],
                       only: str | None, template_file: str) -> tuple[str | None, list[PackerVariable]]:
    """The builder (`-only`) and the variables (`-var`) for one environment's build: the
    environment's `images:` settings, then `--var K=V` (later wins); each checked against the
    template."""
    variables: dict[str, PackerVariable] = {}
    builder_source = "--only"
    builder = only
    if environment is not None:
        settings = environment.image_settings
        for name, value in (settings.get("variables") or {}).items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            variables[name] = PackerVariable(name, text, f"{environment.file} images.variables")
        if builder is None and settings.get("builder"):
            builder, builder_source = str(settings["builder"]), f"{environment.file} images.builder"
    for item in cli_vars:
        name, separator, value = item.partition("=")
        if not separator or not name:
            raise UserError(f"malformed --var {item!r}", hint="use --var NAME=VALUE")
        variables[name] = PackerVariable(name, value, "--var")
    check_variables(template, list(variables.values()), template_file)
    if builder is not None:
        check_builder(template, builder, builder_source, template_file)
    return builder, list(variables.values())
