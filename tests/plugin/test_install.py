"""`opsgit providers install` against a local server that keeps the provider registry
protocol's contract (service discovery through Terraform's CLI configuration `host` block,
versions, download metadata, the zip and SHA256SUMS): never the public registry."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from opsgit.plugin.discovery import platform_dir
from tests.conftest import run_opsgit, write_tree
from tests.plugin.conftest import ENV, MODULE, install_testing_provider

VERSION = "0.3.0"


class Registry(ThreadingHTTPServer):
    def __init__(self, package: bytes, filename: str) -> None:
        super().__init__(("127.0.0.1", 0), RegistryHandler)
        self.package = package
        self.filename = filename
        self.shasum = hashlib.sha256(package).hexdigest()
        self.requests: list[str] = []


class RegistryHandler(BaseHTTPRequestHandler):
    server: Registry

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        os_name, arch = platform_dir().split("_", 1)
        base = "/v1/providers/opsgit/testing/"
        if self.path == base + "versions":
            self._send({"versions": [{"version": VERSION, "protocols": ["5.0"],
                                      "platforms": [{"os": os_name, "arch": arch}]}]})
        elif self.path == base + f"{VERSION}/download/{os_name}/{arch}":
            self._send({"protocols": ["5.0"], "os": os_name, "arch": arch, "filename": self.server.filename,
                        "download_url": f"/files/{self.server.filename}", "shasum": self.server.shasum,
                        "shasums_url": "/files/SHA256SUMS", "shasums_signature_url": "/files/SHA256SUMS.sig",
                        "signing_keys": {"gpg_public_keys": []}})
        elif self.path == f"/files/{self.server.filename}":
            self._send(self.server.package, "application/zip")
        elif self.path == "/files/SHA256SUMS":
            self._send(f"{hashlib.sha256(self.server.package).hexdigest()}  {self.server.filename}\n".encode(),
                       "text/plain")
        else:
            self._send({"errors": ["not found"]}, status=404)

    def _send(self, body: object, kind: str = "application/json", status: int = 200) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def release_zip(tmp_path: Path) -> tuple[bytes, str]:
    """The testing provider as a registry release: a zip holding its executable."""
    binary = install_testing_provider(tmp_path / "build", VERSION)
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w") as archive:
        info = zipfile.ZipInfo(binary.name)
        info.external_attr = 0o755 << 16
        archive.writestr(info, binary.read_bytes())
    return stream.getvalue(), f"terraform-provider-testing_{VERSION}_{platform_dir()}.zip"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    server = Registry(*release_zip(tmp_path))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def setup(tmp_path: Path, registry: Registry) -> tuple[Path, dict[str, str]]:
    mirror = tmp_path / "mirror"
    root = write_tree(tmp_path / "ops", {
        "pyproject.toml": f'[tool.opsgit]\nplugin_dirs = ["{mirror}"]\n',
        "environments/dev/env.yaml": ENV.format(store=tmp_path / "cloud.json").replace("0.1.0", VERSION),
        "modules/app/module.yaml": MODULE.format()})
    rc = tmp_path / "terraformrc"
    rc.write_text('host "registry.terraform.io" {\n  services = {\n'
                  f'    "providers.v1" = "http://127.0.0.1:{registry.server_address[1]}/v1/providers/"\n  }}\n}}\n')
    return root, {"TF_CLI_CONFIG_FILE": str(rc), "HOME": str(tmp_path / "home")}


def test_install_downloads_checks_and_records_a_missing_provider(tmp_path: Path, registry: Registry) -> None:
    root, extra = setup(tmp_path, registry)
    missing = run_opsgit("providers", "list", cwd=root, extra=extra)
    assert "not installed" in missing.stdout
    installed = run_opsgit("providers", "install", cwd=root, extra=extra)
    assert installed.returncode == 0, installed.stderr
    assert f"registry.terraform.io/opsgit/testing {VERSION}: installed" in installed.stdout
    binary = tmp_path / "mirror/registry.terraform.io/opsgit/testing" / VERSION / platform_dir() / \
        f"terraform-provider-testing_v{VERSION}_x5"
    assert binary.is_file() and binary.stat().st_mode & 0o111
    assert '"h1:' in (root / ".terraform.lock.hcl").read_text()
    plan = run_opsgit("plan", "--env", "dev", cwd=root, extra=extra)
    assert plan.returncode == 0 and "Plan: 2 to add" in plan.stdout, plan.stdout + plan.stderr
    again = run_opsgit("providers", "install", cwd=root, extra=extra)
    assert "already installed" in again.stdout and len([r for r in registry.requests if r.endswith(".zip")]) == 1


def test_a_package_that_does_not_match_its_checksum_is_not_installed(tmp_path: Path, registry: Registry) -> None:
    root, extra = setup(tmp_path, registry)
    registry.package = registry.package + b"tampered"  # the zip changes after its checksum was published
    result = run_opsgit("providers", "install", cwd=root, extra=extra)
    assert result.returncode == 1 and "SHA-256" in result.stderr and "nothing was installed" in result.stderr
    assert not (tmp_path / "mirror").exists() or not any((tmp_path / "mirror").rglob("terraform-provider-*"))
