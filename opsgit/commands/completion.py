"""`opsgit completion bash|zsh|tcsh`: a shell completion script for every command and option,
generated from the same declarations as the parser (shtab: a static script, so completing costs
the shell nothing and `opsgit --help` imports nothing more).

    opsgit completion bash > ~/.local/share/bash-completion/completions/opsgit
    opsgit completion zsh > "${fpath[1]}/_opsgit"
"""

from __future__ import annotations

from opsgit.commands.base import Arg, Command

SHELLS = ("bash", "zsh", "tcsh")


def completion(shell: str) -> int:
    import shtab

    from opsgit import output
    from opsgit.cli import build_parser

    output.say(shtab.complete(build_parser(), shell=shell).rstrip("\n"))
    return 0


COMMANDS = (Command("completion", "print a shell completion script (bash, zsh or tcsh)",
                    lambda a: completion(a.shell), args=(
                        Arg("shell", "the shell to complete in", choices=SHELLS, metavar="|".join(SHELLS)),)),)
