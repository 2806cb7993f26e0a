"""Template denial of service: an expression that would take the machine's memory is refused at
once, with the file and line, in each place a template runs at render time (env.yaml values,
module bodies, the Packer template) and in host templates run by `opsgit template`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, run_opsgit

PAYLOADS = ["{{ 9 ** (9 ** 9) }}", "{{ 'x' * 10 ** 10 }}", "{{ [0] * 10 ** 9 }}", "{{ lipsum(n=10 ** 6) }}"]


def plant(example: Path, place: str, payload: str) -> str:
    """Put `payload` into `place` of the example; the file it is in, for the error."""
    if place == "env.yaml":
        path = example / "environments/dev/env.yaml"
        text = path.read_text()
        assert '      name: "{{ var.name }}"\n' in text
        path.write_text(text.replace('      name: "{{ var.name }}"\n', f'      name: "{payload}"\n', 1))
        return "environments/dev/env.yaml"
    if place == "module":
        path = example / "modules/network/module.yaml"
        path.write_text(path.read_text().replace('description: Allow all inbound traffic',
                                                 f'description: "{payload}"', 1))
        return "modules/network/module.yaml"
    path = example / "templates/packer.json.j2"
    path.write_text(path.read_text().replace('"variables": {', f'"payload": "{payload}", "variables": {{', 1))
    return "templates/packer.json.j2"


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("place", ["env.yaml", "module", "packer"])
def test_a_huge_expression_is_refused_at_once_with_its_file(example: Path, place: str, payload: str) -> None:
    file = plant(example, place, payload)
    started = time.monotonic()
    result = run_opsgit("render", cwd=example, timeout=60)
    assert time.monotonic() - started < 10
    assert result.returncode == 1, result.stdout[-500:] + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {file}:") and "unsafe template operation refused" in line, line


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_huge_expression_in_a_host_template_is_refused(tmp_path: Path, payload: str) -> None:
    source = tmp_path / "app.conf.j2"
    source.write_text(f"value = {payload}\n")
    started = time.monotonic()
    result = run_opsgit("template", "--once", "--template", f"{source}:{tmp_path / 'app.conf'}", cwd=REPO_ROOT,
                        extra={"CONSUL_HTTP_ADDR": "127.0.0.1:9"}, timeout=60)
    assert time.monotonic() - started < 10
    assert result.returncode == 1, result.stderr
    assert "unsafe template operation refused" in result.stderr and "app.conf.j2" in result.stderr
    assert not (tmp_path / "app.conf").exists()
