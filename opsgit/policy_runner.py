"""Runs checkov's Terraform-plan checks for `opsgit.policy`, inside checkov's own interpreter
(its virtual environment, or opsgit's when `opsgit[policy]` is installed there): this file
imports only checkov and the standard library, never opsgit.

opsgit starts it as soon as a plan begins, so checkov's imports (a second or more) happen while
the plan is made; it then reads one JSON line on standard input — the plan file, the custom
checks' folder, the checks to skip — runs checkov's plan runner on it (only that runner: the
command line would load every framework checkov has) and prints one JSON line with the summary
and the failed checks.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def main() -> None:
    from checkov.runner_filter import RunnerFilter
    from checkov.terraform.plan_runner import Runner

    request = sys.stdin.readline()
    if not request.strip():
        os._exit(0)  # opsgit went without a plan to check
    asked: dict[str, Any] = json.loads(request)
    folders = [folder for folder in asked.get("external_checks_dir", []) if os.path.isdir(folder)]
    report = Runner().run(root_folder=None, files=[asked["plan"]], external_checks_dir=folders or None,
                          runner_filter=RunnerFilter(framework=["terraform_plan"],
                                                     skip_checks=asked.get("skip_checks") or None))
    from checkov.version import version

    summary = dict(report.get_summary())
    summary["checkov_version"] = version
    failed = [{"check_id": r.check_id, "check_name": r.check_name, "resource": r.resource,
               "guideline": r.guideline or ""} for r in report.failed_checks]
    sys.stdout.write(json.dumps({"summary": summary, "failed": failed}) + "\n")
    sys.stdout.flush()
    os._exit(0)  # checkov's graph is large: tearing it down would take a second for nothing


if __name__ == "__main__":
    main()
