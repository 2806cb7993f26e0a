"""The files `opsgit init` writes: a small ops monorepo that renders, plans and builds an image at
once on any machine (null and local_file resources, Packer's null builder), laid out like the
real thing so that adding an AWS module or an amazon-ebs builder is an edit, not a rewrite."""

from __future__ import annotations

PYPROJECT = """\
[project]
name = "{name}-ops"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["opsgit"]

# opsgit's settings for this monorepo.
[tool.opsgit]
org = "{name}"
status_context_prefix = "opsgit"
default_base = "origin/main"
build_dir = "build"
"""

TASKS = """\
\"\"\"This monorepo's tasks: `invoke --list`.\"\"\"

from opsgit.tasks import ns

__all__ = ["ns"]
"""

GITIGNORE = """\
build/
.opsgit/
__pycache__/
"""

ENV = """\
# One environment: what runs, with which inputs. Everything here plans on a laptop: the
# resources are null_resource and local_file; add an aws provider and modules when ready.
description: The first environment
state:
  backend: local          # .opsgit/state/dev.json; s3 for shared environments
lock:
  backend: local          # consul or s3 for shared environments
images:
  builder: local          # Packer's null builder: a tarball of the role's files
variables:
  name: dev
  replicas: 2
modules:
  app:
    source: app
    inputs:
      name: "{{ var.name }}-app"
      replicas: "{{ var.replicas }}"
      image: "{{ images.app | default('none yet') }}"
roles: [app]
outputs:
  nodes: ${module.app.nodes}
"""

IMAGES = """\
# Images promoted to dev, one per role: `HC_ROLE=app invoke image --env dev --promote` writes here.
"""

MODULE = """\
description: An application's nodes and its config file
variables:
  name: {type: string}
  replicas: {type: number, default: 1}
  image: {type: string, default: none yet}
---
resources:
  null_resource.node:
    count: {{ var.replicas }}
    triggers:
      name: "{{ var.name }}-${count.index}"
      image: "{{ var.image }}"
  local_file.inventory:
    filename: "build/{{ environment.name }}-{{ var.name }}.inventory"
    content: "${null_resource.node[*].id}"
outputs:
  nodes: ${null_resource.node[*].id}
"""

ROLE = """\
description: The application, configured from Consul
image:
  packages: []
  provision: []
service:
  name: app
  port: 8080
  checks:
    - name: app health
      http: http://127.0.0.1:8080/health
      interval: 10s
templates:
  - source: app.conf.j2
    destination: /etc/app/app.conf
    perms: "0640"
env_prefix: service/app
run: [/usr/local/bin/app, --config, /etc/app/app.conf]
"""

ROLE_TEMPLATE = """\
# Rendered on the host by `opsgit template` from Consul.
listen = 0.0.0.0:8080
database = {{ key_or_default("service/app/database", "sqlite:///var/lib/app/app.db") }}
"""

ROLE_TEST = """\
\"\"\"The app image: `HC_ROLE=app invoke image && invoke verify --role app`.\"\"\"

import json

from opsgit.testing import image_path, render_host_template


def test_the_service_definition_is_valid(host):
    service = json.loads(host.file(image_path("/etc/consul.d/app.json")).content_string)["service"]
    assert service["name"] == "app" and service["port"] == 8080


def test_the_config_renders(host):
    template = host.file(image_path("/etc/opsgit/templates/app.conf.j2")).content_string
    assert "database = postgres://db" in render_host_template(
        template, keys={"service/app/database": "postgres://db"})
"""

PACKER = """\
{#- The one image template for every role, rendered per role by opsgit. Packer's own {{ }}
    expressions pass through. Add an amazon-ebs builder for real images. -#}
{
  "description": {{ ("Image for role " ~ role.name) | to_json }},
  "variables": {
    "role": "{{ env `HC_ROLE` }}",
    "commit": "{{ env `OPSGIT_COMMIT` }}",
    "output_dir": "."
  },
  "builders": [{"type": "null", "name": "local", "communicator": "none"}],
  "provisioners": [
    {
      "type": "shell-local",
      "inline": [
        "set -e",
        "rm -rf {{user `output_dir`}}/root",
        "mkdir -p {{user `output_dir`}}/root/etc/consul.d {{user `output_dir`}}/root/etc/opsgit/templates",
        "cp -R {{template_dir}}/../../roles/{{ role.name }}/templates/. {{user `output_dir`}}/root/etc/opsgit/templates/",
        "cp {{template_dir}}/../../roles/{{ role.name }}/role.json {{user `output_dir`}}/root/etc/opsgit/role.json"
        {%- if role.service %},
        "cp {{template_dir}}/../../roles/{{ role.name }}/consul/{{ role.name }}.json {{user `output_dir`}}/root/etc/consul.d/"
        {%- endif %},
        "tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C {{user `output_dir`}}/root -cf - . | gzip -n > {{user `output_dir`}}/{{user `role`}}.tar.gz"
      ]
    }
  ],
  "post-processors": [
    [
      {"type": "artifice", "files": ["{{user `output_dir`}}/{{user `role`}}.tar.gz"]},
      {"type": "manifest", "output": "manifest.json", "strip_path": true}
    ]
  ]
}
"""

README = """\
# {name} operations

An ops monorepo managed with opsgit.

```sh
opsgit render                      # render everything into build/
opsgit plan --env dev              # what would change
opsgit apply --env dev build/plans/dev.plan.json
HC_ROLE=app invoke image           # build the app role's image with Packer
invoke verify --role app           # run its testinfra tests
```
"""


def files(name: str) -> dict[str, str]:
    return {
        "pyproject.toml": PYPROJECT.format(name=name),
        "tasks.py": TASKS,
        ".gitignore": GITIGNORE,
        "README.md": README.format(name=name),
        "environments/dev/env.yaml": ENV,
        "environments/dev/images.yaml": IMAGES,
        "modules/app/module.yaml": MODULE,
        "roles/app/role.yaml": ROLE,
        "roles/app/templates/app.conf.j2": ROLE_TEMPLATE,
        "roles/app/tests/test_app.py": ROLE_TEST,
        "templates/packer.json.j2": PACKER,
    }
