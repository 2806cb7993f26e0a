"""Finding a provider's binary as Terraform would, and checking it against the repository's
dependency lock file (`.terraform.lock.hcl`, Terraform's own format: a repository can share it).

Where it looks, in order: `[tool.opsgit] plugin_dirs`, `TF_PLUGIN_CACHE_DIR`, the CLI
configuration's `plugin_cache_dir` and `provider_installation { filesystem_mirror { path } }`
(`TF_CLI_CONFIG_FILE`, else `~/.terraformrc`), then Terraform's implied mirrors
(`terraform.d/plugins` in the repository, `~/.terraform.d/plugins`, the XDG data directories).
Each holds the unpacked layout `HOST/NAMESPACE/TYPE/VERSION/OS_ARCH/terraform-provider-TYPE*`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

from opsgit.errors import ConfigError, UserError

DEFAULT_HOST = "registry.terraform.io"
LOCK_FILE = ".terraform.lock.hcl"
LOCK_HEADER = ("# This file is maintained automatically by \"terraform init\" and by opsgit.\n"
               "# Manual edits may be lost in future updates.\n")


@dataclass(frozen=True)
class Address:
    host: str
    namespace: str
    type: str

    def __str__(self) -> str:
        return f"{self.host}/{self.namespace}/{self.type}"


def parse_source(source: str) -> Address:
    parts = source.strip().lower().split("/")
    if len(parts) == 2:
        parts = [DEFAULT_HOST, *parts]
    if len(parts) != 3 or not all(re.fullmatch(r"[a-z0-9][a-z0-9._-]*", p) for p in parts):
        raise ConfigError(f"provider source {source!r} is not NAMESPACE/TYPE or HOST/NAMESPACE/TYPE",
                          hint="such as hashicorp/aws")
    return Address(*parts)


def cache_dir() -> Path:
    explicit = os.environ.get("OPSGIT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "opsgit"


def platform_dir() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{platform.system().lower()}_{arch}"


def _cli_config_dirs() -> list[Path]:
    path = Path(os.environ.get("TF_CLI_CONFIG_FILE") or Path.home() / ".terraformrc")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    found = [Path(m) for m in re.findall(r'plugin_cache_dir\s*=\s*"([^"]+)"', text)]
    for block in re.findall(r"filesystem_mirror\s*\{([^}]*)\}", text):
        found += [Path(m) for m in re.findall(r'path\s*=\s*"([^"]+)"', block)]
    return found


def search_dirs(root: Path, plugin_dirs: tuple[Path, ...] = ()) -> list[Path]:
    dirs = list(plugin_dirs)
    if os.environ.get("TF_PLUGIN_CACHE_DIR"):
        dirs.append(Path(os.environ["TF_PLUGIN_CACHE_DIR"]))
    dirs += _cli_config_dirs()
    dirs += [root / "terraform.d" / "plugins", Path.home() / ".terraform.d" / "plugins"]
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    data_dirs = [data_home, *(Path(d) for d in (os.environ.get("XDG_DATA_DIRS") or
                                                "/usr/local/share:/usr/share").split(":") if d)]
    dirs += [d / "terraform" / "plugins" for d in data_dirs]
    return [d.expanduser() for d in dirs]


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else -1 for p in re.split(r"[.+-]", version))


@dataclass(frozen=True)
class Found:
    address: Address
    version: str
    package: Path   # the OS_ARCH directory
    binary: Path


def find(address: Address, version: str | None, root: Path, plugin_dirs: tuple[Path, ...] = ()) -> Found:
    """The provider package for `address` at `version` (the newest found when not given)."""
    looked = search_dirs(root, plugin_dirs)
    candidates: list[Found] = []
    for base in looked:
        versions = base / address.host / address.namespace / address.type
        if not versions.is_dir():
            continue
        for version_dir in versions.iterdir():
            if version is not None and version_dir.name != version:
                continue
            package = version_dir / platform_dir()
            binaries = sorted(p for p in package.glob(f"terraform-provider-{address.type}*")
                              if p.is_file() and re.fullmatch(rf"terraform-provider-{re.escape(address.type)}([_.].*)?",
                                                              p.name))
            if binaries:
                candidates.append(Found(address, version_dir.name, package, binaries[0]))
    if not candidates:
        wanted = f"{address} {version}" if version else str(address)
        raise UserError(f"provider {wanted} for {platform_dir()} is not installed",
                        hint=f"looked in {', '.join(str(d) for d in looked[:4])} and {len(looked) - 4} more; "
                             "run `opsgit providers install`, or put a filesystem mirror in [tool.opsgit] plugin_dirs")
    return max(candidates, key=lambda c: version_key(c.version))


def package_hash(package: Path) -> str:
    """Terraform's `h1:` hash of an unpacked package (Go's dirhash Hash1): the SHA-256 of the
    list of `HEX  NAME` lines of its files, base64. Cached by size and time: the aws package is
    700 MB, a few seconds to read."""
    files = sorted(p for p in package.rglob("*") if p.is_file())
    key = json.dumps([[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files])
    cache = cache_dir() / "package-hashes.json"
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return str(known[key])
    summary = "".join(f"{_file_sha256(p)}  {p.relative_to(package).as_posix()}\n" for p in files)
    digest = "h1:" + base64.b64encode(hashlib.sha256(summary.encode()).digest()).decode()
    known[key] = digest
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        staged = cache.with_suffix(".tmp")
        staged.write_text(json.dumps(known))
        staged.replace(cache)
    except OSError:
        pass  # a read-only home: the hash is computed again next time
    return digest


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# -- the lock file --------------------------------------------------------------------------------

_BLOCK = re.compile(r'provider\s+"([^"]+)"\s*\{(.*?)\n\}', re.DOTALL)


def read_lock(root: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """address -> (version, hashes) from the repository's lock file."""
    path = root / LOCK_FILE
    if not path.is_file():
        return {}
    locked = {}
    for address, body in _BLOCK.findall(path.read_text(encoding="utf-8")):
        version = re.search(r'version\s*=\s*"([^"]+)"', body)
        hashes = re.search(r"hashes\s*=\s*\[(.*?)\]", body, re.DOTALL)
        locked[address] = (version.group(1) if version else "",
                           tuple(re.findall(r'"([^"]+)"', hashes.group(1))) if hashes else ())
    return locked


def write_lock(root: Path, locked: dict[str, tuple[str, tuple[str, ...]]]) -> None:
    blocks = []
    for address, (version, hashes) in sorted(locked.items()):
        lines = "".join(f'    "{h}",\n' for h in sorted(hashes))
        blocks.append(f'provider "{address}" {{\n  version = "{version}"\n  hashes = [\n{lines}  ]\n}}\n')
    staged = root / (LOCK_FILE + ".tmp")
    staged.write_text(LOCK_HEADER + "\n" + "\n".join(blocks), encoding="utf-8")
    staged.replace(root / LOCK_FILE)


def verify(found: Found, root: Path) -> str:
    """The package's hash, refused when the lock file records others for its version; recorded
    in the lock file (to be committed) when the provider is new to it."""
    from opsgit import output

    digest = package_hash(found.package)
    locked = read_lock(root)
    entry = locked.get(str(found.address))
    if entry is not None and entry[0] == found.version:
        if digest not in entry[1]:
            raise UserError(f"provider {found.address} {found.version} at {found.binary} does not match "
                            f"{LOCK_FILE}: its hash is {digest}, the lock file has {', '.join(entry[1])}",
                            hint="a different build of the provider: install the one the lock file names, or "
                                 "delete its block to trust this one")
        return digest
    locked[str(found.address)] = (found.version, (digest,))
    write_lock(root, locked)
    output.warn(f"recorded {found.address} {found.version} ({digest}) in {LOCK_FILE}: commit it")
    return digest
