"""A repository whose environment uses the testing provider from a filesystem mirror."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from opsgit.plugin.discovery import platform_dir
from tests.conftest import write_tree

PROVIDER_SCRIPT = Path(__file__).with_name("testing_provider.py")
VERSION = "0.1.0"


def install_testing_provider(mirror: Path, version: str = VERSION, protocols: str = "5", tls: str = "") -> Path:
    """The testing provider in Terraform's unpacked mirror layout: an executable that runs it,
    serving the plugin protocol versions `protocols` ("5", "6" or "5,6"), only over AutoMTLS
    when `tls` is "required"."""
    package = mirror / "registry.terraform.io" / "opsgit" / "testing" / version / platform_dir()
    package.mkdir(parents=True, exist_ok=True)
    binary = package / f"terraform-provider-testing_v{version}_x5"
    # The provider's source hash is part of the "binary", as its code is part of a real one: the
    # schema cache is keyed by the package's hash.
    source = hashlib.sha256(PROVIDER_SCRIPT.read_bytes()).hexdigest()
    binary.write_text(f"#!/bin/sh\n# testing provider {source}\nTESTING_PROVIDER_PROTOCOLS={protocols} "
                      f"TESTING_PROVIDER_TLS={tls} "
                      f"exec {sys.executable} {PROVIDER_SCRIPT} \"$@\"\n")
    binary.chmod(0o755)
    return binary


ENV = """providers:
  testing:
    source: opsgit/testing
    version: 0.1.0
    store: {store}
modules:
  app:
    source: app
"""

MODULE = """resources:
  testing_thing.web:
    name: web
    size: 2
    secret: s3cret-value-123
    tags: {{role: web}}
    rule:
      - {{port: 80}}
      - {{port: 443}}
  testing_thing.worker:
    name: worker-of-${{testing_thing.web.id}}
    size: ${{testing_thing.web.serial}}
outputs:
  web_id: ${{testing_thing.web.id}}
"""


@pytest.fixture
def plugin_repo(tmp_path: Path) -> Path:
    mirror = tmp_path / "mirror"
    install_testing_provider(mirror)
    root = write_tree(tmp_path / "ops", {
        "pyproject.toml": f'[tool.opsgit]\nplugin_dirs = ["{mirror}"]\n',
        "environments/dev/env.yaml": ENV.format(store=tmp_path / "cloud.json"),
        "modules/app/module.yaml": MODULE.format(),
    })
    return root
