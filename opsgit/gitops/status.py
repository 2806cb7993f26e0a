"""Commit statuses on pull requests: GitHub's `POST /repos/{owner}/{repo}/statuses/{sha}`, or
GitLab's `POST /projects/:id/statuses/:sha` when the GitLab CI variables are set.

One stable context per environment and stage (`opsgit/plan: prod`), `pending` when a run starts,
then `success` with the plan summary, `failure` when the plan failed, `error` when opsgit did.
Posting is best effort: retried on 5xx and rate limits, and a post that still fails is a warning,
never a different plan result. The token is sent in a header and never printed.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsgit import output
from opsgit.errors import UserError
from opsgit.secrets import redact

MAX_DESCRIPTION = 140
MAX_CONTEXT = 255
GITLAB_STATES = {"pending": "running", "success": "success", "failure": "failed", "error": "failed"}
COMMENT_MARKER = "<!-- opsgit:plans -->"


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


def target_from_environment(root: Path) -> StatusTarget:
    env = os.environ
    if env.get("CI_API_V4_URL") and env.get("CI_PROJECT_ID"):
        token = env.get("GITLAB_TOKEN") or env.get("CI_JOB_TOKEN")
        if not token:
            raise UserError("--status needs a token: GITLAB_TOKEN is not set",
                            hint="give the job a project access token with api scope as GITLAB_TOKEN")
        return StatusTarget("gitlab", env["CI_API_V4_URL"].rstrip("/"), env["CI_PROJECT_ID"],
                            env.get("CI_COMMIT_SHA") or _head_sha(root), token, env.get("CI_JOB_URL"),
                            int(env["CI_MERGE_REQUEST_IID"]) if env.get("CI_MERGE_REQUEST_IID") else None)
    token = env.get("GITHUB_TOKEN")
    if not token:
        raise UserError("--status needs a token: GITHUB_TOKEN is not set",
                        hint="in GitHub Actions: env: {GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}} "
                        "with permissions: statuses: write")
    repository = env.get("GITHUB_REPOSITORY")
    if not repository or "/" not in repository:
        raise UserError("--status needs GITHUB_REPOSITORY (owner/name)")
    server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    target_url = (f"{server}/{repository}/actions/runs/{env['GITHUB_RUN_ID']}" if env.get("GITHUB_RUN_ID") else None)
    ref = env.get("GITHUB_REF", "")
    pull = int(ref.split("/")[2]) if ref.startswith("refs/pull/") and ref.split("/")[2].isdigit() else None
    return StatusTarget("github", env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/"), repository,
                        env.get("GITHUB_SHA") or _head_sha(root), token, target_url, pull)


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

    def comment(self, body: str) -> bool:
        """Keep one pull-request (merge-request) comment with the plans, edited in place on later
        runs: GitHub issue comments, GitLab merge-request notes."""
        target = self.target
        if target.pull_request is None:
            return False
        text = f"{COMMENT_MARKER}\n{redact(body)}"
        if target.kind == "github":
            listing = f"{target.api_url}/repos/{target.repository}/issues/{target.pull_request}/comments"
            edit, edit_method = f"{target.api_url}/repos/{target.repository}/issues/comments/{{id}}", "PATCH"
        else:
            listing = f"{target.api_url}/projects/{target.repository}/merge_requests/{target.pull_request}/notes"
            edit, edit_method = listing + "/{id}", "PUT"
        try:
            existing = None
            page = 1
            while existing is None:
                comments = self._send("GET", listing, params={"per_page": 100, "page": page}) or []
                existing = next((c for c in comments if COMMENT_MARKER in (c.get("body") or "")), None)
                if len(comments) < 100:
                    break
                page += 1
            if existing is not None:
                self._send(edit_method, edit.format(id=existing["id"]), json={"body": text})
            else:
                self._send("POST", listing, json={"body": text})
        except UserError as error:
            output.warn(f"pull-request comment not posted: {error}")
            return False
        return True
