"""Affected-detection benchmark (issue: GitOps). Prints a Markdown table for docs/benchmarks.md.

    python bench/affected.py [--envs 500] [--instances 20] [--roles 100]

On the synthetic monorepo of bench/synth.py, committed to a real git repository: `opsgit affected`
as a real process for (1) a one-file change (one environment's env.yaml) and (2) a change to a
module that every environment uses, against `opsgit render` of everything. Median of 3 each;
peak resident memory of the process tree sampled as in bench/render.py.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.render import timed_process  # noqa: E402
from bench.synth import generate  # noqa: E402


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", *args], cwd=repo,
                   check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", type=int, default=500)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--roles", type=int, default=100)
    args = parser.parse_args()
    repo = generate(HERE / "out" / "affected", args.envs, args.instances, args.roles)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    opsgit = [sys.executable, "-m", "opsgit"]
    full = [timed_process([*opsgit, "render"], repo) for _ in range(3)]

    git(repo, "checkout", "-q", "-b", "one-file")
    env_file = repo / "environments/env7/env.yaml"
    env_file.write_text(env_file.read_text().replace("nodes_blue: ", "nodes_blue: 1", 1))
    git(repo, "commit", "-qam", "one env")
    one = [timed_process([*opsgit, "affected", "--base", "main", "--json"], repo) for _ in range(3)]

    git(repo, "checkout", "-q", "main")
    git(repo, "checkout", "-q", "-b", "shared-module")
    module = repo / "modules/network/module.yaml"
    module.write_text(module.read_text().replace("default: 10.0.0.0/16", "default: 10.1.0.0/16"))
    git(repo, "commit", "-qam", "network for all")
    # Cold: no render of main to start from. Warm: the build directory holds main's complete render
    # (what CI keeps after each merge), so the merge base's side is not rendered again.
    kept = repo.parent / "build-of-main"
    shutil.rmtree(kept, ignore_errors=True)
    (repo / "build").rename(kept)
    shared = [timed_process([*opsgit, "affected", "--base", "main", "--json"], repo) for _ in range(3)]
    shutil.rmtree(repo / "build", ignore_errors=True)
    kept.rename(repo / "build")
    warm = [timed_process([*opsgit, "affected", "--base", "main", "--json"], repo) for _ in range(3)]

    full_time = statistics.median(t for t, _ in full)
    one_time = statistics.median(t for t, _ in one)
    shared_time = statistics.median(t for t, _ in shared)
    warm_time = statistics.median(t for t, _ in warm)
    print("| measured | figure | target |")
    print("|---|---|---|")
    print(f"| `opsgit render` everything ({', '.join(f'{t:.2f}' for t, _ in full)} s) | {full_time:.2f} s, "
          f"{max(m for _, m in full) / 1024:.0f} MB | (the reference) |")
    print(f"| `opsgit affected`, one env.yaml changed ({', '.join(f'{t:.2f}' for t, _ in one)} s) | "
          f"{one_time:.2f} s = {full_time / one_time:.0f}x faster, {max(m for _, m in one) / 1024:.0f} MB | "
          "<= 1 s and >= 10x faster |")
    print(f"| `opsgit affected`, a module every environment uses ({', '.join(f'{t:.2f}' for t, _ in shared)} s) | "
          f"{shared_time:.2f} s, {max(m for _, m in shared) / 1024:.0f} MB | within the full render's "
          f"({full_time:.2f} s, {max(m for _, m in full) / 1024:.0f} MB) |")
    print(f"| the same, with main's complete render in build/ ({', '.join(f'{t:.2f}' for t, _ in warm)} s) | "
          f"{warm_time:.2f} s, {max(m for _, m in warm) / 1024:.0f} MB | within the full render's |")


if __name__ == "__main__":
    main()
