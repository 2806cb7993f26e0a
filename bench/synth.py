"""Generate a synthetic monorepo: N environments x M module instances, R roles.

    python bench/synth.py OUT [--envs 500] [--instances 20] [--roles 100]

Each environment instantiates a shared network module once and then a mix of service modules,
each reading the network's output and some reading another instance's output, as real
environments do. Module bodies are about 25 lines, with loops, conditionals and count.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

NETWORK = """\
description: network of one environment
variables:
  name: {type: string}
  cidr: {type: string, default: 10.0.0.0/16}
---
resources:
  aws_security_group.allow_all:
    name: "{{ var.name }}-allow-all"
    ingress:
      - {from_port: 0, to_port: 0, protocol: "-1", cidr_blocks: ["{{ var.cidr }}"]}
    egress:
      - {from_port: 0, to_port: 0, protocol: "-1", cidr_blocks: [0.0.0.0/0]}
outputs:
  security_group_id: ${aws_security_group.allow_all.id}
"""

SERVICE = """\
description: a service behind blue/green groups (variant {variant})
variables:
  name: {{type: string}}
  ami: {{type: string}}
  nodes_blue: {{type: number, default: 1}}
  nodes_green: {{type: number, default: 0}}
  security_group: {{type: string}}
  upstream: {{type: string, default: ""}}
  port: {{type: number, default: {port}}}
---
resources:
{{% for colour in ["blue", "green"] %}}
  aws_launch_configuration.{{{{ colour }}}}:
    name_prefix: "{{{{ var.name }}}}-{{{{ colour }}}}-"
    image_id: "{{{{ var.ami }}}}"
    instance_type: t3.micro
    security_groups: ["{{{{ var.security_group }}}}"]
    user_data: "PORT={{{{ var.port }}}} UPSTREAM={{{{ var.upstream }}}}"
  aws_autoscaling_group.{{{{ colour }}}}:
    name: "{{{{ var.name }}}}-{{{{ colour }}}}"
    launch_configuration: ${{aws_launch_configuration.{{{{ colour }}}}.name}}
    min_size: {{{{ var['nodes_' ~ colour] }}}}
    max_size: {{{{ var['nodes_' ~ colour] }}}}
    tags:
      - {{key: Name, value: "{{{{ var.name }}}}-{{{{ colour }}}}", propagate_at_launch: true}}
{{% endfor %}}
  consul_keys.config:
    prefix: service/{{{{ var.name }}}}
    keys: {{port: "{{{{ var.port }}}}", upstream: "{{{{ var.upstream }}}}"}}
outputs:
  address: "${{aws_autoscaling_group.blue.name}}:{{{{ var.port }}}}"
"""

PACKER = """\
{%- import "macros.j2" as m -%}
{
  "variables": {"role": "{{ env `HC_ROLE` }}", "region": "us-east-1"},
  "builders": [
    {"type": "null", "name": "local", "communicator": "none"},
    {"type": "amazon-ebs", "name": "amazon-ebs", "region": "{{user `region`}}", "source_ami": "ami-1",
     "instance_type": "t3.micro", "ssh_username": "admin", "ami_name": "{{user `role`}}-{{timestamp}}",
     "skip_region_validation": true}
  ],
  "provisioners": [
    {"type": "shell", "only": ["amazon-ebs"], "inline": {{ m.steps(role) }}}
  ],
  "post-processors": [{"type": "manifest", "output": "manifest.json"}]
}
"""

MACROS = """\
{%- macro steps(role) -%}
{{ (["sudo apt-get install -y " ~ (role.image.packages | join(" "))] + role.image.provision) | to_json }}
{%- endmacro -%}
"""

ROLE = """\
description: role {index}
image:
  packages: [pkg-{index}, jq]
  provision: ["install -d /var/lib/role-{index}"]
service:
  name: role-{index}
  port: {port}
  checks: [{{http: "http://127.0.0.1:{port}/health", interval: 10s}}]
templates:
  - source: app.conf.j2
    destination: /etc/role-{index}/app.conf
    command: systemctl reload role-{index}
  - source: env.j2
    destination: /etc/role-{index}/env
env_prefix: service/role-{index}
"""

APP_CONF = """\
listen {{{{ key_or_default("service/role-{index}/port", "{port}") }}}}
{{% for upstream in service("role-{upstream}") %}}
upstream {{{{ upstream.address }}}}:{{{{ upstream.port }}}}
{{% endfor %}}
"""

ENV_TEMPLATE = """\
{% for pair in tree("service/common") %}{{ pair.key | upper }}={{ pair.value }}
{% endfor %}
"""

MODULE_VARIANTS = 8


def environment(index: int, instances: int, roles: int) -> str:
    lines = [
        f"description: synthetic environment {index}",
        "providers:",
        "  aws: {region: us-east-1}",
        "  consul: {datacenter: dc1}",
        "variables:",
        f"  name: env{index}",
        "modules:",
        "  network:",
        "    source: network",
        "    inputs: {name: \"{{ var.name }}\"}",
    ]
    for number in range(1, instances):
        variant = (index + number) % MODULE_VARIANTS
        lines += [
            f"  svc{number}:",
            f"    source: service{variant}",
            "    inputs:",
            f"      name: \"{{{{ var.name }}}}-svc{number}\"",
            "      ami: \"{{ images.role0 }}\"",
            f"      nodes_blue: {1 + (index + number) % 3}",
            "      security_group: ${module.network.security_group_id}",
        ]
        if number > 1 and number % 2 == 0:
            lines.append(f"      upstream: ${{module.svc{number - 1}.address}}")
    picked = sorted({(index * 7 + k * 13) % roles for k in range(5)})
    lines.append("roles: [" + ", ".join(f"role{r}" for r in picked) + "]")
    return "\n".join(lines) + "\n"


def generate(out: Path, envs: int, instances: int, roles: int) -> Path:
    if out.exists():
        shutil.rmtree(out)
    (out / "templates").mkdir(parents=True)
    (out / "templates/packer.json.j2").write_text(PACKER)
    (out / "templates/macros.j2").write_text(MACROS)
    (out / "pyproject.toml").write_text('[tool.opsgit]\norg = "synthetic"\n')
    (out / "modules/network").mkdir(parents=True)
    (out / "modules/network/module.yaml").write_text(NETWORK)
    for variant in range(MODULE_VARIANTS):
        directory = out / f"modules/service{variant}"
        directory.mkdir(parents=True)
        (directory / "module.yaml").write_text(SERVICE.format(variant=variant, port=8000 + variant))
    for index in range(roles):
        directory = out / f"roles/role{index}"
        (directory / "templates").mkdir(parents=True)
        (directory / "role.yaml").write_text(ROLE.format(index=index, port=9000 + index))
        (directory / "templates/app.conf.j2").write_text(
            APP_CONF.format(index=index, port=9000 + index, upstream=(index + 1) % roles))
        (directory / "templates/env.j2").write_text(ENV_TEMPLATE)
    for index in range(envs):
        directory = out / f"environments/env{index}"
        directory.mkdir(parents=True)
        (directory / "env.yaml").write_text(environment(index, instances, roles))
        (directory / "images.yaml").write_text(f"role0: ami-{index:08x}\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--envs", type=int, default=500)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--roles", type=int, default=100)
    args = parser.parse_args()
    generate(args.out, args.envs, args.instances, args.roles)
    print(f"wrote {args.envs} environments x {args.instances} module instances, {args.roles} roles to {args.out}")


if __name__ == "__main__":
    main()
