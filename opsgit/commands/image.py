"""`opsgit image --role ROLE [--env ENV] [--only BUILDER] [--var K=V] [--promote] [--dry-run]`
(`HC_ROLE=binstore invoke image`): render the one Packer template for the role, run the real
`packer build`, read the manifest, record the artefact, and optionally promote it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from opsgit import output
from opsgit.commands.base import Arg, Command
from opsgit.errors import ConsulError, UserError

if TYPE_CHECKING:
    from opsgit.images.record import ImageRecord
    from opsgit.repo.values import Environment

DEFAULT_ENV = "dev"


def resolve_role(role: str | None) -> str:
    chosen = role or os.environ.get("HC_ROLE")
    if not chosen:
        raise UserError("no role given", hint="set HC_ROLE (HC_ROLE=binstore invoke image) or pass --role ROLE")
    return chosen


def image(role: str | None = None, env: str | None = None, *, only: str | None = None, variables: Sequence[str] = (),
          promote: bool = False, dry_run: bool = False) -> int:
    import datetime
    import hashlib
    import json
    import shlex
    import time

    from opsgit.config import find_root, load_settings
    from opsgit.consul.client import Consul
    from opsgit.gitops.history import head_commit
    from opsgit.images.packer import (
        build_command,
        environment_inputs,
        image_id,
        last_run_builds,
        packer_environment,
        require_packer,
        run_build,
    )
    from opsgit.images.record import ImageRecord, kv_key, record_image
    from opsgit.locks.holder import holder_record
    from opsgit.render.images import TEMPLATE
    from opsgit.render.pipeline import Selection, publish, render_selection
    from opsgit.repo import load_repo, require_environment
    from opsgit.repo.schema import suggest

    role = resolve_role(role)
    root = find_root()
    settings = load_settings(root)
    env = env or DEFAULT_ENV
    require_environment(root, env)
    repo = load_repo(root, settings, only={env})
    environment = repo.environments[env]
    if role not in repo.roles:
        raise UserError(f"unknown role {role!r}", hint=suggest(role, repo.roles) or f"roles: {', '.join(repo.roles)}")
    if role not in environment.roles:
        raise UserError(f"role {role!r} is not in environment {env}", file=environment.file,
                        line=environment.origin.child("roles").line, hint="add it to the environment's roles:")
    artefacts = render_selection(repo, Selection(roles=[role]))
    template_artefact = next(a for a in artefacts if a.kind == "image")
    document = json.loads(template_artefact.files[f"images/{role}/packer.json"])
    builder, packer_vars = environment_inputs(document, environment, variables, only, TEMPLATE)
    build = publish(settings.build_path, artefacts, complete=False)
    template = build / "images" / role / "packer.json"
    workdir = build / "artefacts" / env / role
    who = holder_record("image")  # the user and, in CI, the commit being built
    commit = who.get("commit") or head_commit(root) or ""
    packer = "packer" if dry_run else require_packer()
    argv = build_command(packer, template, builder, packer_vars)
    label = f"{role}/{env}"
    if dry_run:
        shown = template.relative_to(root) if template.is_relative_to(root) else template
        output.say(f"Would build {label} from {shown} in {workdir}:")
        output.say(f"  HC_ROLE={role} OPSGIT_COMMIT={commit or '?'} {shlex.join(argv)}")
        return 0
    from opsgit.gitops.runs import record_run, run_store

    with record_run(run_store(environment.state, root), env, "image", commit or None) as run:
        run.note(role=role, builder=builder)
        output.say(f"Building {label} with Packer" + (f" (builder {builder})" if builder else "") + " ...")
        started = time.monotonic()
        run_build(argv, workdir, {**packer_environment(role), "OPSGIT_COMMIT": commit}, label)
        builds = last_run_builds(workdir / "manifest.json")
        if promote and len(builds) > 1:
            raise UserError(f"Packer built {len(builds)} artefacts ({', '.join(b.builder for b in builds)}); "
                            "nothing was promoted", hint="choose one with --only BUILDER")
        region = _region(environment)
        template_hash = hashlib.sha256(template.read_bytes()).hexdigest()
        built_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        records = [ImageRecord(role=role, env=env, image_id=image_id(b, workdir, role, region),
                               artifact_id=b.artifact_id, builder=b.builder, builder_type=b.builder_type,
                               commit=commit or None, at=built_at, template_hash=template_hash,
                               packer_run_uuid=b.run_uuid, files=b.files, who=who.get("who"), run=run.number)
                   for b in builds]
        consul = Consul()
        for record in records:
            try:
                record_image(root, environment, record, consul)
            except ConsulError as error:
                raise UserError(f"image {record.image_id} is built and in the image history, but not in Consul KV "
                                f"{kv_key(env, role)}: {error.message}",
                                hint="start Consul (or set CONSUL_HTTP_ADDR) and build again") from None
            output.say(f"Built {label}: {output.paint(record.image_id, 'bold')} (builder {record.builder}, "
                       f"{time.monotonic() - started:.1f}s); recorded in the image history and Consul KV "
                       f"{kv_key(env, role)}")
        run.finish("built", summary=f"Built {label}: {', '.join(r.image_id for r in records)}",
                   images=[{"image_id": r.image_id, "artifact_id": r.artifact_id, "builder": r.builder}
                           for r in records], builder=records[0].builder if records else builder)
    if promote:
        _promote(root, environment, role, records[0])
    return 0


def _region(environment: Environment) -> str | None:
    variables = environment.image_settings.get("variables") or {}
    region = variables.get("region") or (environment.providers.get("aws") or {}).get("region")
    return str(region) if region else None


def _promote(root: Path, environment: Environment, role: str, record: ImageRecord) -> None:
    from opsgit.images.promote import promote as promote_image

    relative = f"environments/{environment.name}/images.yaml"
    previous = promote_image(root / relative, relative, role, record.image_id)
    if previous == record.image_id:
        output.say(f"{relative}: {role} is already {record.image_id}; nothing to promote")
        return
    output.say(f"Promoted: {relative} {role}: {previous or '(none)'} -> {record.image_id}")
    output.say(f"Review the change with `opsgit plan --env {environment.name}` and open a pull request with it.")


COMMANDS = (Command(
    "image", "build a role's image with Packer, record it, optionally promote it", lambda a: image(
        a.role, a.env, only=a.only, variables=a.var, promote=a.promote, dry_run=a.dry_run), args=(
        Arg("--role", "the role (default: $HC_ROLE)", metavar="ROLE"),
        Arg("--env", "the environment whose images: settings apply (default: dev)", metavar="ENV"),
        Arg("--only", "the Packer builder (default: the env's images.builder)", metavar="BUILDER"),
        Arg("--var", "a Packer variable the template declares; repeatable", kind="list", metavar="NAME=VALUE"),
        Arg("--promote", "write the image id into environments/<env>/images.yaml", kind="bool"),
        Arg("--dry-run", "render and show the packer command only", kind="bool"),
    )),)
