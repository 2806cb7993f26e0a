"""Affected-detection benchmark (issue: GitOps). Prints a Markdown table for docs/benchmarks.md.

    python bench/affected.py [--envs 500] [--instances 20] [--roles 100]

On the synthetic monorepo of bench/synth.py, committed to a real git repository: `opsgit affected`
as a real process for (1) a one-file change (one environment's env.yaml) and (2) a change to a
module that every environment uses, cold and warm, against `opsgit render` of everything, in
interleaved rounds (5 by default); medians, per-round ratios, and the peak resident memory of the
process tree sampled as in bench/render.py.
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

from bench.render import Run, timed_process  # noqa: E402
from bench.synth import generate  # noqa: E402


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", *args], cwd=repo,
                   check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", type=int, default=500)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--roles", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    repo = generate(HERE / "out" / "affected", args.envs, args.instances, args.roles)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    git(repo, "checkout", "-q", "-b", "one-file")
    env_file = repo / "environments/env7/env.yaml"
    env_file.write_text(env_file.read_text().replace("nodes_blue: ", "nodes_blue: 1", 1))
    git(repo, "commit", "-qam", "one env")
    git(repo, "checkout", "-q", "main")
    git(repo, "checkout", "-q", "-b", "shared-module")
    module = repo / "modules/network/module.yaml"
    module.write_text(module.read_text().replace("default: 10.0.0.0/16", "default: 10.1.0.0/16"))
    git(repo, "commit", "-qam", "network for all")

    opsgit = [sys.executable, "-m", "opsgit"]
    affected = [*opsgit, "affected", "--base", "main", "--json"]
    kept = repo.parent / "build-of-main"
    runs: dict[str, list[Run]] = {"render": [], "one": [], "cold": [], "warm": []}
    # Rounds interleave the four measurements, so that the machine's drift (±15 % here) falls on
    # all of them alike; each round's ratios are of measurements taken a few seconds apart.
    for _ in range(args.rounds):
        git(repo, "checkout", "-q", "main")
        runs["render"].append(timed_process([*opsgit, "render"], repo))
        # Cold: no render of main to start from. Warm: the build directory holds main's complete
        # render (what CI keeps after each merge), so the merge base's side is not rendered again.
        shutil.rmtree(kept, ignore_errors=True)
        (repo / "build").rename(kept)
        git(repo, "checkout", "-q", "one-file")
        runs["one"].append(timed_process(affected, repo))
        git(repo, "checkout", "-q", "shared-module")
        runs["cold"].append(timed_process(affected, repo))
        shutil.rmtree(repo / "build", ignore_errors=True)
        kept.rename(repo / "build")
        runs["warm"].append(timed_process(affected, repo))

    def seconds(name: str) -> str:
        return ", ".join(f"{run.wall:.2f}" for run in runs[name])

    def median(name: str, field: str = "wall") -> float:
        return statistics.median(getattr(run, field) for run in runs[name])

    def peak(name: str) -> str:
        return f"{max(run.peak for run in runs[name]) / 1024:.0f} MB"

    def ratio(name: str, field: str = "wall") -> float:
        return statistics.median(getattr(run, field) / getattr(reference, field)
                                 for run, reference in zip(runs[name], runs["render"], strict=True))

    def cpu(name: str) -> str:
        return f"CPU {median(name, 'cpu'):.1f} s = {ratio(name, 'cpu'):.2f}x"

    print("| measured | wall | CPU (user + system, all processes) | peak memory | target |")
    print("|---|---|---|---|---|")
    print(f"| `opsgit render` everything ({seconds('render')} s) | {median('render'):.2f} s | "
          f"{median('render', 'cpu'):.1f} s | {peak('render')} | (the reference) |")
    print(f"| `opsgit affected`, one env.yaml changed ({seconds('one')} s) | {median('one'):.2f} s = "
          f"{1 / ratio('one'):.0f}x faster | {cpu('one')} | {peak('one')} | <= 1 s and >= 10x faster |")
    print(f"| `opsgit affected`, a module every environment uses, cold ({seconds('cold')} s) | {median('cold'):.2f} s "
          f"= {ratio('cold'):.2f}x | {cpu('cold')} | {peak('cold')} | within the full render's |")
    print(f"| the same, warm: main's complete render in build/ ({seconds('warm')} s) | {median('warm'):.2f} s = "
          f"{ratio('warm'):.2f}x | {cpu('warm')} | {peak('warm')} | within the full render's |")
    print("(ratios: the median over the rounds of each round's figure / that round's render)")


if __name__ == "__main__":
    main()
