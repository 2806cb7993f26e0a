"""Policy checks on a plan: checkov runs on the plan in Terraform's JSON format, with the
repository's own checks from `policies/`, and the plan passes or fails on the checks it enforces.

Settings (`[tool.opsgit.policy]` in pyproject.toml; checks are on when it or `policies/` exists):
    enforce = ["CKV_AWS_24", "CKV_OPSGIT_1"]   # failures that fail the plan (default: every one)
    skip = ["CKV_AWS_144"]                      # checks not run at all
    checks_dir = "policies"                     # the repository's custom checks (Python or YAML)
    checkov = "/opt/checkov/bin/checkov"        # the binary (default: OPSGIT_CHECKOV, beside opsgit, PATH)
An environment skips a check with a written reason, in env.yaml:
    policy: {skip: {CKV_AWS_24: "dev is reachable only from the office VPN"}}

checkov is an optional extra (`pip install opsgit[policy]`) run as a process, in its own
interpreter (`policy_runner`), so its dependencies stay out of opsgit's; it starts when the plan
starts, so its imports overlap the plan, and it is told not to reach the network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsgit.errors import ConfigError, UserError
from opsgit.output import plural

if TYPE_CHECKING:
    from opsgit.engine.plan import Plan
    from opsgit.workspace import Workspace

POLICY_KEYS = ("enforce", "skip", "checks_dir", "checkov")
CHECKOV_TIMEOUT = 600.0


@dataclass(frozen=True)
class PolicySettings:
    enforce: tuple[str, ...] | None = None  # None: every failed check fails the plan
    skip: tuple[str, ...] = ()
    checks_dir: str = "policies"
    checkov: str = ""


def parse_settings(table: Any) -> PolicySettings:
    """`[tool.opsgit.policy]`, checked."""
    if not isinstance(table, dict):
        raise ConfigError("[tool.opsgit] policy must be a table", file="pyproject.toml",
                          hint='[tool.opsgit.policy]\nenforce = ["CKV_AWS_24"]')
    for key in table:
        if key not in POLICY_KEYS:
            raise ConfigError(f"unknown setting [tool.opsgit.policy] {key!r}", file="pyproject.toml",
                              hint=f"known settings: {', '.join(POLICY_KEYS)}")
    for key in ("enforce", "skip"):
        if key in table and (not isinstance(table[key], list) or not all(isinstance(c, str) for c in table[key])):
            raise ConfigError(f"[tool.opsgit.policy] {key} must be a list of check ids", file="pyproject.toml",
                              hint=f'{key} = ["CKV_AWS_24"]')
    for key in ("checks_dir", "checkov"):
        if key in table and not isinstance(table[key], str):
            raise ConfigError(f"[tool.opsgit.policy] {key} must be a string", file="pyproject.toml")
    enforce = table.get("enforce")
    return PolicySettings(enforce=tuple(enforce) if enforce is not None else None, skip=tuple(table.get("skip", [])),
                          checks_dir=table.get("checks_dir", "policies"), checkov=table.get("checkov", ""))


@dataclass(frozen=True)
class Finding:
    check_id: str
    name: str
    address: str
    declared_at: str   # the module file:line that declares the resource
    guideline: str
    enforced: bool

    def to_json(self) -> dict[str, Any]:
        return {"check_id": self.check_id, "name": self.name, "address": self.address,
                "declared_at": self.declared_at, "guideline": self.guideline, "enforced": self.enforced}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Finding:
        return cls(str(data["check_id"]), str(data.get("name", "")), str(data["address"]),
                   str(data.get("declared_at", "")), str(data.get("guideline", "")), bool(data.get("enforced")))


@dataclass(frozen=True)
class PolicyResult:
    checkov_version: str
    resources: int
    passed: int
    findings: tuple[Finding, ...] = ()
    skipped: Mapping[str, str] = field(default_factory=dict)  # check id -> why

    @property
    def failed(self) -> tuple[Finding, ...]:
        """The failures that fail the plan."""
        return tuple(f for f in self.findings if f.enforced)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        if self.ok:
            return (f"Policy: {self.passed} passed, 0 failed"
                    + (f", {len(self.findings)} reported, not enforced" if self.findings else "") + ".")
        ids = ", ".join(sorted({f.check_id for f in self.failed}))
        return f"Policy: {plural(len(self.failed), 'check')} failed ({ids})."

    def to_json(self) -> dict[str, Any]:
        return {"checkov_version": self.checkov_version, "resources": self.resources, "passed": self.passed,
                "ok": self.ok, "findings": [f.to_json() for f in self.findings], "skipped": dict(self.skipped)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PolicyResult:
        return cls(str(data.get("checkov_version", "")), int(data.get("resources", 0)), int(data.get("passed", 0)),
                   tuple(Finding.from_json(f) for f in data.get("findings", [])), dict(data.get("skipped", {})))


def enabled(root: Path, settings: PolicySettings | None) -> bool:
    return settings is not None or (root / "policies").is_dir()


def checkov_binary(settings: PolicySettings) -> str:
    """The checkov to run: the setting, OPSGIT_CHECKOV, the one installed beside opsgit, PATH."""
    for candidate in (settings.checkov, os.environ.get("OPSGIT_CHECKOV", ""),
                      str(Path(sys.executable).parent / "checkov"), shutil.which("checkov") or ""):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise UserError("checkov is not installed, and this repository has policy checks (policies/ or "
                    "[tool.opsgit.policy])",
                    hint="pip install 'opsgit[policy]' (or set OPSGIT_CHECKOV to a checkov binary); "
                         "`opsgit plan --policy false` plans without them")


def checkov_interpreter(binary: str) -> str:
    """The Python that `binary` (a pip-installed script) runs with: its shebang's."""
    with open(binary, "rb") as script:
        first = script.readline().decode("utf-8", "replace").strip()
    if first.startswith("#!"):
        command = first[2:].split()
        if command and Path(command[0]).name.startswith("python") and Path(command[0]).is_file():
            return command[0]
    sibling = Path(binary).with_name("python")
    if sibling.is_file():
        return str(sibling)
    raise UserError(f"{binary} is not a pip-installed checkov (no Python interpreter found in its first line)",
                    hint="set OPSGIT_CHECKOV to the checkov of a virtual environment")


class PolicyRun:
    """One plan's policy checks: checkov starts (and imports itself, a second or more) when the
    plan starts; `finish` hands it the plan and judges the answer."""

    def __init__(self, root: Path, settings: PolicySettings, env_skips: Mapping[str, str]) -> None:
        self.root = root
        self.settings = settings
        self.skipped = {check_id: "skipped in [tool.opsgit.policy]" for check_id in settings.skip}
        self.skipped.update(env_skips)
        runner = Path(__file__).with_name("policy_runner.py")
        environment = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "ERROR"}
        # -I: checkov's interpreter with its own packages only (not opsgit's folder, whose
        # modules would shadow the standard library's `secrets`, or PYTHONPATH)
        self.process = subprocess.Popen([checkov_interpreter(checkov_binary(settings)), "-I", str(runner)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env=environment, cwd=tempfile.gettempdir())

    def finish(self, plan: Plan) -> PolicyResult:
        from opsgit.secrets import redact_data

        with tempfile.TemporaryDirectory(prefix="opsgit-policy-") as scratch:
            document = Path(scratch) / f"{plan.env}.plan.json"
            document.write_text(json.dumps(redact_data(plan.to_json())))
            request = {"plan": str(document), "external_checks_dir": [str(self.root / self.settings.checks_dir)],
                       "skip_checks": sorted(self.skipped)}
            try:
                stdout, stderr = self.process.communicate(json.dumps(request) + "\n", timeout=CHECKOV_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                raise UserError(f"checkov took more than {CHECKOV_TIMEOUT:g} s on the plan of {plan.env}") from None
        try:
            report = json.loads(stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            said = " ".join((stderr or stdout).strip().splitlines()[-1:])[:300]
            raise UserError(f"checkov did not check the plan of {plan.env} (exit {self.process.returncode}): {said}",
                            hint="run checkov by hand on `opsgit plan --json` to see why") from None
        return _judge(report, plan, self.settings, self.skipped)

    def cancel(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def check(plan: Plan, root: Path, settings: PolicySettings, env_skips: Mapping[str, str]) -> PolicyResult:
    """Run checkov on `plan`, judge what it found."""
    return PolicyRun(root, settings, env_skips).finish(plan)


def _judge(report: Mapping[str, Any], plan: Plan, settings: PolicySettings,
           skipped: Mapping[str, str]) -> PolicyResult:
    summary = report.get("summary", {})
    graph = plan.graph
    findings = []
    for failed in report.get("failed", []):
        address = str(failed.get("resource", ""))
        declared = graph.resources[address].source if graph is not None and address in graph.resources else ""
        check_id = str(failed.get("check_id", ""))
        enforced = settings.enforce is None or check_id in settings.enforce
        findings.append(Finding(check_id, str(failed.get("check_name", "")), address, declared,
                                str(failed.get("guideline") or ""), enforced))
    findings.sort(key=lambda f: (not f.enforced, f.check_id, f.address))
    return PolicyResult(str(summary.get("checkov_version", "")), int(summary.get("resource_count", 0)),
                        int(summary.get("passed", 0)), tuple(findings), dict(skipped))


def format_result(result: PolicyResult) -> str:
    """The table printed under the plan: every enforced failure, then how many others."""
    lines = [f"Policy checks (checkov {result.checkov_version or '?'}, {plural(result.resources, 'resource')}): "
             f"{result.passed} passed, {len(result.failed)} failed"
             + (f", {len(result.findings) - len(result.failed)} reported, not enforced"
                if len(result.findings) > len(result.failed) else "")
             + (f", {len(result.skipped)} skipped" if result.skipped else "") + "."]
    shown = list(result.failed)
    if shown:
        widths = [max(len(h), *(len(v) for v in values)) for h, values in (
            ("CHECK", [f.check_id for f in shown]), ("RESOURCE", [f.address for f in shown]),
            ("DECLARED AT", [f.declared_at for f in shown]))]
        lines.append("  " + "  ".join(h.ljust(w) for h, w in zip(("CHECK", "RESOURCE", "DECLARED AT"), widths,
                                                                   strict=True)) + "  GUIDELINE")
        for finding in shown:
            lines.append("  " + "  ".join(v.ljust(w) for v, w in zip(
                (finding.check_id, finding.address, finding.declared_at), widths, strict=True))
                + f"  {finding.guideline or finding.name}")
    for check_id, why in sorted(result.skipped.items()):
        lines.append(f"  skipped {check_id}: {why}")
    lines.append(result.summary())
    return "\n".join(lines)


# -- in the commands: plan, apply, plan --affected ------------------------------------------

def policy_wanted(workspace: Workspace, policy: str, mode: str = "normal") -> bool:
    """`--policy auto|true|false` (auto: OPSGIT_POLICY, else whether the repository has checks)."""
    if policy == "auto":
        policy = os.environ.get("OPSGIT_POLICY", "auto")
    if policy == "false" or mode == "refresh-only":
        return False
    return policy == "true" or enabled(workspace.root, workspace.settings.policy)


def start_policy(workspace: Workspace, policy: str, mode: str = "normal") -> PolicyRun | None:
    """The policy checks of the plan about to be made, started now (None when they are off)."""
    if not policy_wanted(workspace, policy, mode):
        return None
    return PolicyRun(workspace.root, workspace.settings.policy or PolicySettings(), workspace.environment.policy_skips)


def check_policy(workspace: Workspace, result: Plan, policy: str, checking: PolicyRun | None = None) -> Plan:
    """The plan with its policy checks' result, when policy checks are on."""
    from dataclasses import replace

    run = checking if checking is not None else start_policy(workspace, policy, result.mode)
    if run is None:
        return result
    try:
        return replace(result, policy=run.finish(result).to_json())
    finally:
        run.cancel()


def refuse_failed_policy(result: Plan, stage: str, override: str | None = None) -> None:
    """A plan whose policy checks failed stops here (exit 1), unless an apply was given a reason."""
    if result.policy is None:
        return
    outcome = PolicyResult.from_json(result.policy)
    if outcome.ok or override:
        return
    failed = ", ".join(f"{f.check_id} on {f.address}" for f in outcome.failed[:3])
    more = f" and {len(outcome.failed) - 3} more" if len(outcome.failed) > 3 else ""
    raise UserError(f"the plan of {result.env} failed its policy checks: {failed}{more}",
                    hint="fix them, or skip a check in env.yaml with a reason" if stage == "plan" else
                    'apply it anyway with --override-policy "why", which the run history records')
