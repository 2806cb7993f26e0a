"""`opsgit providers list` (the provider plugins the environments name, where each was found) and
`opsgit providers install` (those missing, from their registry, checked against its checksums)."""

from __future__ import annotations

from opsgit.commands.base import Arg, Command


def _wanted(env: str | None) -> list[tuple[str, str, str | None]]:
    """(environment, source, version) of every provider with a source."""
    from opsgit.config import find_root
    from opsgit.repo import environment_names, load_environment

    root = find_root()
    found = []
    for name in [env] if env else environment_names(root):
        for _, settings in sorted(load_environment(root, name).providers.items()):
            if isinstance(settings, dict) and settings.get("source"):
                version = settings.get("version")
                found.append((name, str(settings["source"]), str(version) if version is not None else None))
    return found


def providers(env: str | None = None) -> int:
    from opsgit import output
    from opsgit.config import find_root, load_settings
    from opsgit.errors import UserError
    from opsgit.plugin import discovery

    root = find_root()
    dirs = load_settings(root).plugin_dirs
    for name, source, version in _wanted(env):
        address = discovery.parse_source(source)
        try:
            where = str(discovery.find(address, version, root, dirs).binary)
        except UserError:
            where = "not installed (opsgit providers install)"
        output.say(f"{name:<12} {address} {version or '(newest)'}  {where}")
    return 0


def install(env: str | None = None) -> int:
    from opsgit import output
    from opsgit.config import find_root, load_settings
    from opsgit.errors import UserError
    from opsgit.plugin import discovery
    from opsgit.plugin import install as installer

    root = find_root()
    dirs = load_settings(root).plugin_dirs
    seen = set()
    for _, source, version in _wanted(env):
        address = discovery.parse_source(source)
        if (address, version) in seen:
            continue
        seen.add((address, version))
        try:
            found = discovery.find(address, version, root, dirs)
            output.say(f"{address} {found.version}: already installed at {found.package}")
        except UserError:
            got, package = installer.install(address, version, installer.default_destination(dirs))
            found = discovery.find(address, got, root, (package.parents[4], *dirs))
            output.say(f"{address} {got}: installed at {package} (checksums verified)")
        discovery.verify(found, root)
    return 0


COMMANDS = (
    Command("providers", "the Terraform provider plugins the environments use: list, install", subcommands=(
        Command("list", "each environment's provider plugins, and where each is found",
                lambda a: providers(a.env), args=(Arg("--env", "one environment (default: all)", metavar="ENV"),)),
        Command("install", "download missing providers from their registry, checked against its checksums, and "
                           "record them in .terraform.lock.hcl",
                lambda a: install(a.env), args=(Arg("--env", "one environment (default: all)", metavar="ENV"),)),
    )),
)
