"""`opsgit providers install`: missing providers downloaded through the provider registry
protocol, their packages checked before anything is unpacked.

The protocol (developer.hashicorp.com/terraform/internals/provider-registry-protocol): service
discovery at `https://HOST/.well-known/terraform.json` (`providers.v1`), then
`NAMESPACE/TYPE/versions` and `NAMESPACE/TYPE/VERSION/download/OS/ARCH`, whose answer names the
zip, its SHA-256 (`shasum`) and the `SHA256SUMS` document listing it. The zip must match both;
then it is unpacked into the first filesystem mirror (`[tool.opsgit] plugin_dirs`, else
`~/.terraform.d/plugins`) in Terraform's unpacked layout, and its `h1:` hash recorded in the lock
file. A registry's address can be given as Terraform's CLI configuration does it:
`host "HOST" { services = { "providers.v1" = "URL" } }` (a private registry, or a test's).
Not checked yet: the OpenPGP signature over SHA256SUMS (`shasums_signature_url`).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tempfile
import urllib.parse
import zipfile
from pathlib import Path
from typing import Any

import requests

from opsgit.errors import UserError
from opsgit.plugin.discovery import Address, platform_dir, version_key

TIMEOUT = float(os.environ.get("TF_REGISTRY_CLIENT_TIMEOUT", "10"))


class RegistryError(UserError):
    """A registry that cannot be reached, or a package that does not match its checksums."""


def _cli_config_services() -> dict[str, str]:
    path = Path(os.environ.get("TF_CLI_CONFIG_FILE") or Path.home() / ".terraformrc")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    found = {}
    for host, services in re.findall(r'host\s+"([^"]+)"\s*\{\s*services\s*=\s*\{([^}]*)\}', text):
        match = re.search(r'"providers\.v1"\s*=\s*"([^"]+)"', services)
        if match:
            found[host] = match.group(1)
    return found


def _get(url: str, what: str) -> requests.Response:
    try:
        answer = requests.get(url, timeout=TIMEOUT)
    except requests.RequestException as error:
        raise RegistryError(f"cannot reach {url} for {what}: {type(error).__name__}",
                            hint="check the network, or use a filesystem mirror ([tool.opsgit] plugin_dirs)") from None
    if answer.status_code == 404:
        raise RegistryError(f"{what}: {url} answered 404", hint="check the provider's source and version")
    if answer.status_code != 200:
        raise RegistryError(f"{what}: {url} answered {answer.status_code}")
    return answer


def _json(url: str, what: str) -> Any:
    try:
        return _get(url, what).json()
    except ValueError:
        raise RegistryError(f"{what}: {url} did not answer JSON") from None


def providers_base(host: str) -> str:
    configured = _cli_config_services().get(host)
    if configured:
        return configured if configured.endswith("/") else configured + "/"
    discovery = f"https://{host}/.well-known/terraform.json"
    base = _json(discovery, f"the registry {host}").get("providers.v1")
    if not isinstance(base, str):
        raise RegistryError(f"{host} is not a provider registry (no providers.v1 in {discovery})")
    return urllib.parse.urljoin(discovery, base)


def install(address: Address, version: str | None, destination: Path) -> tuple[str, Path]:
    """Download, check and unpack `address` at `version` (the newest when None) into
    `destination`; returns the version and the package directory."""
    base = providers_base(address.host)
    versions_url = urllib.parse.urljoin(base, f"{address.namespace}/{address.type}/versions")
    listed = _json(versions_url, f"{address}'s versions").get("versions") or []
    platform_os, platform_arch = platform_dir().split("_", 1)
    available = [v.get("version") for v in listed if isinstance(v, dict)
                 and {"os": platform_os, "arch": platform_arch} in (v.get("platforms") or [])]
    if version is None:
        candidates = sorted((v for v in available if isinstance(v, str)), key=version_key)
        if not candidates:
            raise RegistryError(f"{address} has no version for {platform_dir()}")
        version = candidates[-1]
    elif version not in available:
        raise RegistryError(f"{address} {version} is not published for {platform_dir()}",
                            hint=f"published: {', '.join(str(v) for v in available[-8:]) or 'none'}")
    download_url = urllib.parse.urljoin(base, f"{address.namespace}/{address.type}/{version}/download/"
                                              f"{platform_os}/{platform_arch}")
    meta = _json(download_url, f"{address} {version}'s download")
    zip_url = urllib.parse.urljoin(download_url, str(meta.get("download_url", "")))
    shasum = str(meta.get("shasum", "")).lower()
    filename = str(meta.get("filename", ""))
    package = _get(zip_url, f"{address} {version}'s package").content
    digest = hashlib.sha256(package).hexdigest()
    if digest != shasum:
        raise RegistryError(f"{address} {version}: the package's SHA-256 is {digest}, the registry says {shasum}",
                            hint="a damaged or altered download: nothing was installed")
    if meta.get("shasums_url"):
        sums = _get(urllib.parse.urljoin(download_url, str(meta["shasums_url"])), "SHA256SUMS").text
        if f"{shasum}  {filename}" not in sums.splitlines():
            raise RegistryError(f"{address} {version}: {filename} with SHA-256 {shasum} is not in SHA256SUMS",
                                hint="a damaged or altered release: nothing was installed")
    target = destination / address.host / address.namespace / address.type / version / platform_dir()
    staging = Path(tempfile.mkdtemp(prefix=".opsgit-install-", dir=destination if destination.exists() else None))
    try:
        with zipfile.ZipFile(io.BytesIO(package)) as archive:
            for member in archive.infolist():
                name = Path(member.filename)
                if name.is_absolute() or ".." in name.parts:
                    raise RegistryError(f"{address} {version}: the package holds a path outside it: {member.filename}")
                archive.extract(member, staging)
                mode = (member.external_attr >> 16) & 0o777
                if mode:
                    (staging / name).chmod(mode)
        for binary in staging.glob(f"terraform-provider-{address.type}*"):
            binary.chmod(binary.stat().st_mode | 0o755)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        staging.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return version, target


def default_destination(plugin_dirs: tuple[Path, ...]) -> Path:
    return plugin_dirs[0] if plugin_dirs else Path.home() / ".terraform.d" / "plugins"
