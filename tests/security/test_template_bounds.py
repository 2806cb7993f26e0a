"""Template denial of service: what would take the machine's time or memory is refused within
5 s and 200 MB, with the file and line, in each place a template runs at render time (env.yaml
values, module bodies, the Packer template) and in host templates run by `opsgit template`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opsgit.errors import RenderError
from opsgit.render import bounds
from opsgit.render.jinja import compile_template, make_environment, render
from opsgit.render.literals import Literals
from tests.conftest import OPSGIT, REPO_ROOT, opsgit_environment

# One operator, one filter or one call that would build gigabytes.
AT_ONCE = [
    "{{ 9 ** (9 ** 9) }}", "{{ 'x' * 10 ** 10 }}", "{{ [0] * 10 ** 9 }}", "{{ lipsum(n=10 ** 6) }}",
    "{{ 'x' | center(10 ** 10) }}", "{{ '%10000000000d' | format(1) }}", "{{ '%10000000000d' % 1 }}",
    "{{ '{:>10000000000}'.format(1) }}", "{{ 'x'.ljust(10 ** 10) }}", "{{ (['x' * 1000000] * 1000) | join }}",
    "{{ ('x' * 1000000) | replace('x', 'x' * 1000000) }}", "{{ [1] | batch(10 ** 9, 0) | list | length }}",
    "{% set ns = namespace(a='xx') %}{% for i in range(60) %}{% set ns.a = ns.a ~ ns.a %}{% endfor %}",
    "{% set ns = namespace(a=[1]) %}{% for i in range(60) %}{% set ns.a = ns.a + ns.a %}{% endfor %}",
]
# Each step small, the whole unbounded: stopped by the render's CPU time or the written-text bound.
IN_TIME = [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}",
    "{% for i in range(100000) %}{{ 'x' * 1000000 }}{% endfor %}",
    "{% macro m() %}{% for i in range(100000) %}{{ 'x' * 1000000 }}{% endfor %}{% endmacro %}{{ m() }}",
    "{% set s = 'x' * 1000000 %}{% for c in s %}{% for d in s %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{% for j in range(100) %}" + "x" * 100 + "{% endfor %}{% endfor %}",
]
LIMIT_SECONDS, LIMIT_BYTES = 5.0, 200 * 1024 * 1024


@pytest.mark.parametrize("payload", AT_ONCE + IN_TIME)
def test_each_payload_is_refused_in_time_by_the_renderer(payload: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bounds, "MAX_RENDER_CPU_SECONDS", 0.3)  # the real budget is measured through the CLI below
    environment = make_environment(REPO_ROOT)
    template = compile_template(environment, f"description: \"{payload}\"\n", "modules/m/module.yaml")
    started = time.monotonic()
    with pytest.raises(RenderError) as refused:
        render(template, "modules/m/module.yaml", {}, "", Literals())
    assert time.monotonic() - started < LIMIT_SECONDS
    assert refused.value.file == "modules/m/module.yaml" and refused.value.line == 1
    assert "unsafe template operation refused" in refused.value.message


def test_ordinary_templates_render_as_before() -> None:
    """The bounds leave room: a module body with 2,000 resources in loops, joins and formats."""
    environment = make_environment(REPO_ROOT)
    source = ("resources:\n{% for i in range(2000) %}  null_resource.n{{ i }}:\n"
              "    triggers: {name: \"{{ 'web-%04d' | format(i) }}\", tags: {{ ['a', 'b'] | join(',') | to_json }},"
              " pad: \"{{ ('x' ~ i) | center(20) }}\"}\n{% endfor %}")
    text = render(compile_template(environment, source, "m.yaml"), "m.yaml", {}, source, Literals())
    assert text.count("null_resource.n") == 2000 and 'name: "web-1999"' in text


def measured(args: list[str], cwd: Path, extra: dict[str, str] | None = None) -> tuple[int, str, float, int]:
    """Run opsgit under a small parent that reports the child's peak memory and the CPU time it
    used. The time is CPU time, not wall time: on a shared machine (CI's two cores, another suite
    beside this one) waiting for a core is not the render's doing; the bound it tests is on CPU."""
    probe = ("import resource, subprocess, sys\n"
             "result = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
             "sys.stdout.write(result.stderr)\n"
             "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
             "print(usage.ru_utime + usage.ru_stime)\n"
             "print(usage.ru_maxrss * 1024)\n"
             "sys.exit(result.returncode)\n")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", probe, *OPSGIT, *args], cwd=cwd, capture_output=True, text=True,
                            env=opsgit_environment(None, extra), timeout=120, check=False)
    wall = time.monotonic() - started
    *lines, cpu, peak = result.stdout.strip().splitlines()
    assert wall < 4 * LIMIT_SECONDS, wall  # however loaded the machine, never minutes
    return result.returncode, "\n".join(lines), float(cpu), int(peak)


def plant(example: Path, place: str, payload: str) -> str:
    """Put `payload` into `place` of the example; the file it is in, for the error."""
    quoted = json.dumps(payload)[1:-1]
    if place == "env.yaml":
        path = example / "environments/dev/env.yaml"
        text = path.read_text()
        assert '      name: "{{ var.name }}"\n' in text
        path.write_text(text.replace('      name: "{{ var.name }}"\n', f'      name: "{quoted}"\n', 1))
        return "environments/dev/env.yaml"
    if place == "module":
        path = example / "modules/network/module.yaml"
        path.write_text(path.read_text().replace('description: Allow all inbound traffic',
                                                 f'description: "{quoted}"', 1))
        return "modules/network/module.yaml"
    path = example / "templates/packer.json.j2"
    path.write_text(path.read_text().replace('"variables": {', f'"payload": "{quoted}", "variables": {{', 1))
    return "templates/packer.json.j2"


def check_refused(place: str, payload: str, example: Path, tmp_path: Path) -> None:
    if place == "host":
        source = tmp_path / "app.conf.j2"
        source.write_text(f"value = {payload}\n")
        code, stderr, elapsed, peak = measured(
            ["template", "--once", "--template", f"{source}:{tmp_path / 'app.conf'}"], REPO_ROOT,
            {"CONSUL_HTTP_ADDR": "127.0.0.1:9"})
        assert code == 1 and "unsafe template operation refused" in stderr and "app.conf.j2" in stderr, stderr
        assert not (tmp_path / "app.conf").exists()
    else:
        file = plant(example, place, payload)
        code, stderr, elapsed, peak = measured(["render"], example)
        assert code == 1, stderr
        [line] = stderr.strip().splitlines()
        assert line.startswith(f"error: {file}:") and "unsafe template operation refused" in line, line
        assert not (example / "build").exists()
    assert elapsed < LIMIT_SECONDS and peak < LIMIT_BYTES, (elapsed, peak)


@pytest.mark.parametrize("place", ["module", "host"])
def test_a_loop_in_a_loop_is_stopped_within_5_s_and_200_mb(example: Path, tmp_path: Path, place: str) -> None:
    check_refused(place, IN_TIME[0], example, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("payload", AT_ONCE + IN_TIME)
@pytest.mark.parametrize("place", ["env.yaml", "module", "packer", "host"])
def test_every_payload_in_every_place(example: Path, tmp_path: Path, place: str, payload: str) -> None:
    check_refused(place, payload, example, tmp_path)
