"""The `opsgit` command line and the invoke tasks, as real processes on a copy of the example."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from opsgit.error_handler import run_guarded
from tests.conftest import run_opsgit, venv_bin


def snapshot(build: Path) -> dict[str, bytes]:
    return {p.relative_to(build).as_posix(): p.read_bytes() for p in sorted(build.rglob("*")) if p.is_file()}


def test_render_writes_every_artefact_and_a_manifest(example: Path) -> None:
    result = run_opsgit("render", cwd=example)
    assert result.returncode == 0, result.stderr
    assert "Rendered 3 role bundles, 5 environment graphs, 3 image templates into build/" in result.stdout
    build = example / "build"
    for env in ("dev", "staging", "prod", "cloud", "global"):
        assert (build / "envs" / env / "graph.json").is_file()
    for role in ("binstore", "consul", "web"):
        assert (build / "images" / role / "packer.json").is_file()
        assert (build / "roles" / role / "role.json").is_file()
    manifest = json.loads((build / "manifest.json").read_text())
    dev = next(a for a in manifest["artefacts"] if a["kind"] == "graph" and a["name"] == "dev")
    assert set(dev["reads"]) == {"environments/dev/env.yaml", "environments/dev/images.yaml",
                                 "modules/network/module.yaml", "modules/binstore/module.yaml",
                                 "modules/redis/module.yaml", "modules/webapp/module.yaml"}
    image = next(a for a in manifest["artefacts"] if a["kind"] == "image" and a["name"] == "web")
    assert {"templates/packer.json.j2", "templates/macros.j2", "roles/web/role.yaml",
            "roles/web/templates/haproxy.cfg.j2"} <= set(image["reads"])
    assert len(dev["hash"]) == 64


def test_render_is_deterministic(example: Path) -> None:
    assert run_opsgit("render", cwd=example).returncode == 0
    first = snapshot(example / "build")
    assert run_opsgit("render", cwd=example).returncode == 0
    assert snapshot(example / "build") == first


def test_render_one_environment_keeps_the_rest_of_the_manifest(example: Path) -> None:
    assert run_opsgit("render", cwd=example).returncode == 0
    (example / "environments/dev/env.yaml").write_text(
        (example / "environments/dev/env.yaml").read_text().replace("nodes_blue: 1", "nodes_blue: 3"))
    result = run_opsgit("render", "--env", "dev", "--json", cwd=example)
    assert result.returncode == 0, result.stderr
    rendered = json.loads(result.stdout)["artefacts"]
    assert {(a["kind"], a["name"]) for a in rendered} == {("graph", "dev"), *(
        (kind, role) for kind in ("image", "config") for role in ("binstore", "consul", "web"))}
    graph = json.loads((example / "build/envs/dev/graph.json").read_text())
    blue = next(r for r in graph["resources"] if r["address"] == "module.binstore.aws_autoscaling_group.blue")
    assert blue["attributes"]["max_size"] == 3
    manifest = json.loads((example / "build/manifest.json").read_text())
    graphs = {a["name"] for a in manifest["artefacts"] if a["kind"] == "graph"}
    assert graphs == {"dev", "staging", "prod", "cloud", "global"}


def test_a_failed_render_leaves_the_previous_build_untouched(example: Path) -> None:
    assert run_opsgit("render", cwd=example).returncode == 0
    before = snapshot(example / "build")
    module = example / "modules/webapp/module.yaml"
    module.write_text(module.read_text().replace("{{ var.region }}", "{{ var.regoin }}"))
    result = run_opsgit("render", cwd=example)
    assert result.returncode == 1
    assert "modules/webapp/module.yaml:" in result.stderr and "did you mean 'var.region'?" in result.stderr
    assert snapshot(example / "build") == before


def test_unknown_environment_is_a_user_error_with_a_suggestion(example: Path) -> None:
    result = run_opsgit("render", "--env", "prdo", cwd=example)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: unknown environment 'prdo' (did you mean 'prod'?)"


def test_outside_a_monorepo(tmp_path: Path) -> None:
    result = run_opsgit("render", cwd=tmp_path)
    assert result.returncode == 1
    assert "no opsgit monorepo found" in result.stderr


def test_build_directory_that_cannot_be_written(example: Path) -> None:
    (example / "build").write_text("a file where the build directory should be")
    result = run_opsgit("render", cwd=example)
    assert result.returncode == 1
    assert "cannot write the build directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_opsgit("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "render" in result.stdout and "validate" in result.stdout


def test_dash_c_runs_in_another_directory(example: Path, tmp_path: Path) -> None:
    result = run_opsgit("-C", str(example), "render", "--role", "web", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (example / "build/images/web/packer.json").is_file()
    assert not (example / "build/envs").exists()


def test_invoke_tasks_call_the_same_commands(example: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(venv_bin('invoke')).parent}:{os.environ['PATH']}"}
    listed = subprocess.run([venv_bin("invoke"), "--list"], cwd=example, capture_output=True, text=True,
                            env=env, check=False)
    assert listed.returncode == 0, listed.stderr
    assert "render" in listed.stdout and "validate" in listed.stdout
    rendered = subprocess.run([venv_bin("invoke"), "render", "--env", "dev"], cwd=example, capture_output=True,
                              text=True, env=env, check=False)
    assert rendered.returncode == 0, rendered.stderr
    assert (example / "build/envs/dev/graph.json").is_file()
    failed = subprocess.run([venv_bin("invoke"), "render", "--env", "nope"], cwd=example, capture_output=True,
                            text=True, env=env, check=False)
    assert failed.returncode == 1
    assert "error: unknown environment 'nope'" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_unexpected_errors_exit_3_with_a_log(capsys: object) -> None:
    def broken() -> int:
        raise RuntimeError("boom")

    assert run_guarded(broken) == 3
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert "unexpected RuntimeError: boom" in err
    log = err.rsplit("details in ", 1)[1].rstrip(")\n")
    assert "RuntimeError: boom" in Path(log).read_text()
    assert Path(log).stat().st_mode & 0o077 == 0
    Path(log).unlink()


def test_a_crash_log_goes_under_the_projects_opsgit_directory_masked(example: Path, capsys: object,
                                                                    monkeypatch: object) -> None:
    from opsgit.secrets import register

    monkeypatch.chdir(example)  # type: ignore[attr-defined]
    register("crash-secret-value-9")

    def broken() -> int:
        raise RuntimeError("boom with crash-secret-value-9")

    assert run_guarded(broken) == 3
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    log = Path(err.rsplit("details in ", 1)[1].rstrip(")\n"))
    assert log.parent == example / ".opsgit" / "crash"
    assert "RuntimeError: boom" in log.read_text() and "crash-secret-value-9" not in log.read_text() + err
