"""`opsgit completion bash`: the script, sourced by a real bash, completes commands and options
from the same declarations as the parser."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import run_opsgit


def complete(script: Path, *words: str) -> list[str]:
    line = " ".join(words)
    program = (f'source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; COMP_LINE="{line}"; '
               f'COMP_POINT=${{#COMP_LINE}}; _shtab_opsgit; printf "%s\\n" "${{COMPREPLY[@]}}"')
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True, timeout=30)
    return sorted(done.stdout.split())


def test_bash_completes_commands_subcommands_and_options(tmp_path: Path) -> None:
    generated = run_opsgit("completion", "bash", cwd=tmp_path)
    assert generated.returncode == 0, generated.stderr
    script = tmp_path / "opsgit.bash"
    script.write_text(generated.stdout)
    assert complete(script, "opsgit", "pl") == ["plan"]
    assert complete(script, "opsgit", "st") == ["state"]
    assert "migrate" in complete(script, "opsgit", "state", "")
    assert complete(script, "opsgit", "plan", "--par") == ["--parallelism"]
    assert complete(script, "opsgit", "apply", "--override") == ["--override-policy"]


def test_zsh_and_a_wrong_shell(tmp_path: Path) -> None:
    assert "#compdef opsgit" in run_opsgit("completion", "zsh", cwd=tmp_path).stdout
    wrong = run_opsgit("completion", "fish", cwd=tmp_path)
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr and "invalid choice" in wrong.stderr
