"""Commit statuses on pull requests: GitHub's `POST /repos/{owner}/{repo}/statuses/{sha}`, or
GitLab's `POST /projects/:id/statuses/:sha` when the GitLab CI variables are set.

One stable context per environment and stage (`opsgit/plan: prod`), `pending` when a run starts,
then `success` with the plan summary, `failure` when the plan failed, `error` when opsgit did.
Posting is best effort: retried on 5xx and rate limits, and a post that still fails is a warning,
never a different plan result. The token is sent in a header and never printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from opsgit import output
from opsgit.errors import UserError
from opsgit.gitops.comment import MARKER as COMMENT_MARKER
from opsgit.gitops.comment import Section, parse, render
from opsgit.secrets import redact

MAX_DESCRIPTION = 140
MAX_CONTEXT = 255
GITLAB_STATES = {"pending": "running", "success": "success", "failure": "failed", "error": "failed"}


@dataclass(frozen=True)
class StatusTarget:
    kind: str
    api_url: str
    repository: str
    sha: str
    token: str
    target_url: str | None
    pull_request: int | None

    def __repr__(self) -> str:  # never show the token, even in a traceback
        return f"StatusTarget({self.kind}, {self.repository}, {self.sha[:12]})"


def _head_sha(root: Path) -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise UserError("cannot tell which commit to post statuses on", hint="set GITHUB_SHA, or run inside git")
    return result.stdout.strip()


def actions_run_url(env: Mapping[str, str]) -> str | None:
    """The page of the GitHub Actions run this process belongs to, if it is one."""
    if not env.get("GITHUB_RUN_ID") or not env.get("GITHUB_REPOSITORY"):
        return None
    server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"


def pull_request_event(env: Mapping[str, str]) -> tuple[str, int | None] | None:
    """GitHub Actions' pull request events: the head commit the pull request shows, and its
    number. GITHUB_SHA is then GitHub's synthetic merge commit, which the pull request never shows
    (and for pull_request_target, the base branch's head)."""
    if env.get("GITHUB_EVENT_NAME") not in ("pull_request", "pull_request_target") or not env.get("GITHUB_EVENT_PATH"):
        return None
    try:
        event = json.loads(Path(env["GITHUB_EVENT_PATH"]).read_text())
        pull = event["pull_request"]
        return str(pull["head"]["sha"]), int(pull["number"]) if pull.get("number") is not None else None
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"cannot read the pull request from the event payload {env['GITHUB_EVENT_PATH']}",
                        hint="GitHub Actions writes it for pull_request events; pass --sha to say the commit") \
            from None


def target_from_environment(root: Path, sha: str | None = None) -> StatusTarget:
    """Where statuses go, from the CI's variables: GitHub Actions (on a pull request, its head
    commit, read from the event payload), or GitLab CI. `sha` (`--sha`) wins over both."""
    env = os.environ
    if env.get("CI_API_V4_URL") and env.get("CI_PROJECT_ID"):
        token = env.get("GITLAB_TOKEN") or env.get("CI_JOB_TOKEN")
        if not token:
            raise UserError("--status needs a token: GITLAB_TOKEN is not set",
                            hint="give the job a project access token with api scope as GITLAB_TOKEN")
        return StatusTarget("gitlab", env["CI_API_V4_URL"].rstrip("/"), env["CI_PROJECT_ID"],
                            sha or env.get("CI_COMMIT_SHA") or _head_sha(root), token, env.get("CI_JOB_URL"),
                            int(env["CI_MERGE_REQUEST_IID"]) if env.get("CI_MERGE_REQUEST_IID") else None)
    token = env.get("GITHUB_TOKEN")
    if not token:
        raise UserError("--status needs a token: GITHUB_TOKEN is not set",
                        hint="in GitHub Actions: env: {GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}} "
                        "with permissions: statuses: write")
    repository = env.get("GITHUB_REPOSITORY")
    if not repository or "/" not in repository:
        raise UserError("--status needs GITHUB_REPOSITORY (owner/name)")
    target_url = actions_run_url(env)
    ref = env.get("GITHUB_REF", "")
    pull = int(ref.split("/")[2]) if ref.startswith("refs/pull/") and ref.split("/")[2].isdigit() else None
    commit = sha or env.get("GITHUB_SHA") or ""
    event = pull_request_event(env)
    if event is not None:
        pull = event[1] if event[1] is not None else pull
        if not sha:
            commit = event[0]
            checked_out = _head_sha(root)
            if checked_out != commit:  # a status must describe the commit it is posted on
                raise UserError(f"the pull request shows {commit[:12]}, but {checked_out[:12]} is checked out "
                                "(GitHub's merge commit): the plan would describe another commit",
                                hint="check out the head: actions/checkout with ref: "
                                     "${{ github.event.pull_request.head.sha }}, or pass --sha")
    return StatusTarget("github", env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/"), repository,
                        commit or _head_sha(root), token, target_url, pull)


def context_name(prefix: str, stage: str, env: str) -> str:
    context = f"{prefix}/{stage}: {env}"
    if len(context) <= MAX_CONTEXT:
        return context
    import hashlib
    return context[:MAX_CONTEXT - 13] + "-" + hashlib.sha256(context.encode()).hexdigest()[:12]


class StatusPoster:
    def __init__(self, target: StatusTarget, *, retries: int = 3, backoff: float = 0.5) -> None:
        import requests

        self.target = target
        self.retries = retries
        self.backoff = backoff
        self.session = requests.Session()
        if target.kind == "github":
            self.session.headers.update({"Authorization": f"Bearer {target.token}",
                                         "Accept": "application/vnd.github+json",
                                         "X-GitHub-Api-Version": "2022-11-28"})
        else:
            self.session.headers.update({"PRIVATE-TOKEN": target.token})
        self.posted: list[tuple[str, str]] = []

    def _send(self, method: str, url: str, **arguments: Any) -> Any:
        import requests

        for attempt in range(self.retries + 1):
            try:
                response = self.session.request(method, url, timeout=(5, 20), **arguments)
            except requests.RequestException as error:
                if attempt == self.retries:
                    raise UserError(f"cannot reach {self.target.api_url}: {type(error).__name__}") from None
            else:
                limited = response.status_code == 429 or (
                    response.status_code == 403 and response.headers.get("x-ratelimit-remaining") == "0")
                if response.status_code < 400:
                    return response.json() if response.content else None
                if not (response.status_code >= 500 or limited) or attempt == self.retries:
                    detail = " ".join(response.text.split())[:200]
                    raise UserError(f"{method} {url} answered {response.status_code}: {detail}")
                retry_after = response.headers.get("retry-after")
                if retry_after and retry_after.isdigit():
                    time.sleep(min(float(retry_after), 60))
                    continue
            time.sleep(self.backoff * (2 ** attempt))
        return None

    def post(self, context: str, state: str, description: str) -> bool:
        """Post one status; False (with a warning) when it could not be posted."""
        description = redact(description)
        description = description if len(description) <= MAX_DESCRIPTION else description[:MAX_DESCRIPTION - 1] + "…"
        target = self.target
        try:
            if target.kind == "github":
                body: dict[str, Any] = {"state": state, "context": context, "description": description}
                if target.target_url:
                    body["target_url"] = target.target_url
                self._send("POST", f"{target.api_url}/repos/{target.repository}/statuses/{target.sha}", json=body)
            else:
                params = {"state": GITLAB_STATES[state], "name": context, "description": description}
                if target.target_url:
                    params["target_url"] = target.target_url
                self._send("POST", f"{target.api_url}/projects/{target.repository}/statuses/{target.sha}",
                           params=params)
        except UserError as error:
            output.warn(f"status {context} = {state} not posted: {error}")
            return False
        self.posted.append((context, state))
        return True

    def _comment_urls(self) -> tuple[str, str, str]:
        target = self.target
        if target.kind == "github":
            return (f"{target.api_url}/repos/{target.repository}/issues/{target.pull_request}/comments",
                    f"{target.api_url}/repos/{target.repository}/issues/comments/{{id}}", "PATCH")
        listing = f"{target.api_url}/projects/{target.repository}/merge_requests/{target.pull_request}/notes"
        return listing, listing + "/{id}", "PUT"

    def _marked(self, listing: str) -> list[dict[str, Any]]:
        """The comments that hold opsgit's plans, oldest first."""
        found = []
        page = 1
        while True:
            comments = self._send("GET", listing, params={"per_page": 100, "page": page}) or []
            found += [c for c in comments if COMMENT_MARKER in (c.get("body") or "")]
            if len(comments) < 100:
                return sorted(found, key=lambda c: int(c["id"]))
            page += 1

    def update_sections(self, mine: Mapping[str, Section], title: str = "opsgit plans", attempts: int = 6) -> bool:
        """Put these environments' sections into the pull request's one plans comment (see
        `gitops.comment`): read, rebuild, write whole, read back until they are there."""
        import random

        target = self.target
        if target.pull_request is None:
            return False
        mine = {name: replace(section, summary=redact(section.summary), policy=redact(section.policy),
                              details=redact(section.details)) for name, section in mine.items()}
        listing, edit, edit_method = self._comment_urls()
        try:
            for _ in range(attempts):
                found = self._marked(listing)
                sections: dict[str, Section] = {}
                for existing in found:  # the older comment's sections, then the newer's over them
                    sections.update(parse(existing.get("body") or ""))
                sections.update(mine)
                body = render(sections, title=title, run_url=target.target_url)
                if found:
                    self._send(edit_method, edit.format(id=found[0]["id"]), json={"body": body})
                    for duplicate in found[1:]:  # two jobs made one each: one stays, with both
                        self._send("DELETE", edit.format(id=duplicate["id"]))
                else:
                    self._send("POST", listing, json={"body": body})
                time.sleep(random.uniform(0.05, 0.3))  # let a writer at the same moment finish first
                now = self._marked(listing)
                there = parse(now[0].get("body") or "") if len(now) == 1 else {}
                if all(name in there and (there[name].result, there[name].summary, there[name].policy) ==
                       (section.result, section.summary, section.policy) for name, section in mine.items()):
                    return True
        except UserError as error:
            output.warn(f"pull-request comment not posted: {error}")
            return False
        output.warn("pull-request comment: other jobs kept writing over this one's section; it may be missing")
        return False


class StageStatus:
    """One stage of one environment (plan, policy or apply; a CI matrix job per environment) as
    a commit status: pending on entry, then the summary of what the block left in `results` (a
    plan, a plan with its policy result, an apply result), or the failure."""

    def __init__(self, root: Path, prefix: str, env: str, stage: str, results: list[Any],
                 sha: str | None = None) -> None:
        self.poster = StatusPoster(target_from_environment(root, sha))
        self.context = context_name(prefix, stage, env)
        self.stage = stage
        self.results = results

    def __enter__(self) -> None:
        self.poster.post(self.context, "pending", {"policy": "Checking policies…", "apply": "Applying…"}.get(
            self.stage, "Planning…"))

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        if error is None and self.stage == "apply":
            result = self.results[-1]
            self.poster.post(self.context, "success" if result.ok else "failure",
                             result.summary_line() if result.ok else "; ".join(result.errors)[:140] or "failed")
        elif error is None and self.stage == "policy":
            from opsgit.policy import PolicyResult

            outcome = PolicyResult.from_json(self.results[-1].policy or {})
            self.poster.post(self.context, "success" if outcome.ok else "failure", outcome.summary())
        elif error is None:
            add, change, destroy = self.results[-1].summary
            self.poster.post(self.context, "success",
                             f"Plan: {add} to add, {change} to change, {destroy} to destroy.")
        elif isinstance(error, UserError):
            self.poster.post(self.context, "failure", str(error))
        else:
            self.poster.post(self.context, "error", f"opsgit failed: {type(error).__name__}")
