"""A symbolic link that leads outside the repository is refused wherever opsgit reads, lists or
includes a file, so its target never lands in build/, an image or a plan (real processes on a
copy of the example; the target holds a fake credential)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_opsgit

SECRET = "AKIA-fake-credential-for-the-link-test"


@pytest.mark.parametrize("link", ["roles/web/templates/leak.j2", "templates/leak.j2", "modules/redis/module.yaml",
                                  "environments/dev/images.yaml"])
def test_a_link_out_of_the_repository_is_refused_and_nothing_is_written(example: Path, tmp_path: Path,
                                                                        link: str) -> None:
    outside = tmp_path / "credentials"
    outside.write_text(f"{SECRET}\n")
    path = example / link
    path.unlink(missing_ok=True)
    path.symlink_to(outside)
    for command in (["render"], ["validate", "--no-packer"]):
        result = run_opsgit(*command, cwd=example)
        assert result.returncode == 1, result.stdout + result.stderr
        [line] = result.stderr.strip().splitlines()
        assert line.startswith(f"error: {link}: leads outside the repository (a symbolic link to {outside})")
        assert SECRET not in result.stdout + result.stderr
    assert not (example / "build").exists()


def test_a_link_inside_the_repository_is_fine(example: Path) -> None:
    (example / "templates/site.j2").symlink_to(example / "templates/macros.j2")
    result = run_opsgit("render", cwd=example)
    assert result.returncode == 0, result.stderr


def test_a_build_dir_outside_the_repository_needs_the_operators_word(example: Path, tmp_path: Path) -> None:
    pyproject = example / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('build_dir = "build"', 'build_dir = "../shared-build"'))
    refused = run_opsgit("render", cwd=example)
    assert refused.returncode == 1
    assert refused.stderr.strip() == ("error: pyproject.toml: [tool.opsgit] build_dir '../shared-build' is outside the "
                                      "repository (keep it inside the repository, or set OPSGIT_BUILD_DIR to build "
                                      "elsewhere on purpose)")
    assert not (tmp_path / "shared-build").exists()
    chosen = run_opsgit("render", cwd=example, extra={"OPSGIT_BUILD_DIR": str(tmp_path / "elsewhere")})
    assert chosen.returncode == 0, chosen.stderr
    assert (tmp_path / "elsewhere" / "manifest.json").is_file()
