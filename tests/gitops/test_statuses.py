"""`opsgit plan --affected --status` against a local server that keeps GitHub's status contract."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import run_opsgit, write_tree
from tests.gitops.test_affected import git

TOKEN = "ghs_s3cr3t-token-value"
TOO_LONG = "Validation Failed: body is too long (maximum is 65536 characters)"
MODULE = """\
variables:
  n: {type: number}
---
resources:
  null_resource.node:
    count: {{ var.n }}
    triggers: {index: "${count.index}"}
"""


class GitHub(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.statuses: list[dict[str, str]] = []
        self.comments: dict[int, str] = {}
        self.fail_next = 1  # the first call gets a 502, which must be retried
        self.commits: set[str] = set()  # when set, a status on another commit is GitHub's 404
        self.next_id = 1


class JsonHandler(BaseHTTPRequestHandler):
    """JSON in and out, quietly: what both forges' fakes share."""

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, object]:
        return dict(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}"))


class Handler(JsonHandler):
    server: GitHub

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._reply(401, {"message": "Bad credentials"})
            return False
        if self.server.fail_next:
            self.server.fail_next -= 1
            self._reply(502, {"message": "Server Error"})
            return False
        return True

    def do_POST(self) -> None:
        if not self._authorised():
            return
        body = self._body()
        if "/statuses/" in self.path:
            if self.server.commits and self.path.rsplit("/", 1)[1] not in self.server.commits:
                return self._reply(404, {"message": "Not Found"})
            if body.get("state") not in ("error", "failure", "pending", "success"):
                return self._reply(422, {"message": "Validation Failed: state"})
            if len(str(body.get("description", ""))) > 140:
                return self._reply(422, {"message": "description is too long (maximum is 140 characters)"})
            self.server.statuses.append({"sha": self.path.rsplit("/", 1)[1], **{k: str(v) for k, v in body.items()}})
            return self._reply(201, {"id": len(self.server.statuses)})
        if self.path.endswith("/issues/7/comments"):
            if len(str(body["body"])) > 65536:
                return self._reply(422, {"message": TOO_LONG})
            number = self.server.next_id
            self.server.next_id += 1
            self.server.comments[number] = str(body["body"])
            return self._reply(201, {"id": number})
        self._reply(404, {"message": "Not Found"})

    def do_GET(self) -> None:
        if not self._authorised():
            return
        if "/issues/7/comments" in self.path:
            return self._reply(200, [{"id": k, "body": v} for k, v in self.server.comments.items()])
        self._reply(404, {"message": "Not Found"})

    def do_PATCH(self) -> None:  # PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}
        if not self._authorised():
            return
        number = int(self.path.rsplit("/", 1)[1])
        body = str(self._body()["body"])
        if "/issues/comments/" not in self.path or number not in self.server.comments:
            return self._reply(404, {"message": "Not Found"})
        if len(body) > 65536:
            return self._reply(422, {"message": TOO_LONG})
        self.server.comments[number] = body
        self._reply(200, {"id": number})

    def do_DELETE(self) -> None:  # DELETE /repos/{owner}/{repo}/issues/comments/{comment_id}
        if not self._authorised():
            return
        number = int(self.path.rsplit("/", 1)[1])
        if self.server.comments.pop(number, None) is None:
            return self._reply(404, {"message": "Not Found"})
        self.send_response(204)
        self.end_headers()


@pytest.fixture
def github() -> Iterator[GitHub]:
    server = GitHub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    env = "modules:\n  app:\n    source: app\n    inputs: {n: 1}\n"
    root = write_tree(tmp_path / "ops", {"environments/a/env.yaml": env, "environments/b/env.yaml": env,
                                         "environments/c/env.yaml": env, "modules/app/module.yaml": MODULE,
                                         "pyproject.toml": "[tool.opsgit]\nstatus_context_prefix = \"opsgit\"\n"})
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    git(root, "checkout", "-q", "-b", "pr")
    for name in ("a", "b"):
        (root / f"environments/{name}/env.yaml").write_text(env.replace("n: 1", "n: 2"))
    (root / "environments/c/env.yaml").write_text(env.replace("n: 1", "n: 2").replace("source: app", "source: ap"))
    git(root, "commit", "-qam", "grow a and b, break c")
    return root


def run(repo: Path, github: GitHub, *args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB_"))}
    env.update({"GITHUB_API_URL": f"http://127.0.0.1:{github.server_address[1]}", "GITHUB_REPOSITORY": "org/ops",
                "GITHUB_REF": "refs/pull/7/merge", "GITHUB_RUN_ID": "99", "GITHUB_SERVER_URL": "https://github.test"})
    if token:
        env["GITHUB_TOKEN"] = token
    return run_opsgit("plan", "--affected", "--base", "main", *args, cwd=repo, env=env, timeout=120)


def test_statuses_per_environment_pending_then_result(repo: Path, github: GitHub) -> None:
    result = run(repo, github, "--status")
    assert result.returncode == 1  # c's plan failed
    sha = git(repo, "rev-parse", "HEAD").strip()
    by_context: dict[str, list[tuple[str, str]]] = {}
    for status in github.statuses:
        assert status["sha"] == sha and status["target_url"] == "https://github.test/org/ops/actions/runs/99"
        by_context.setdefault(status["context"], []).append((status["state"], status["description"]))
    assert by_context["opsgit/plan: a"] == [("pending", "Planning…"),
                                            ("success", "Plan: 2 to add, 0 to change, 0 to destroy.")]
    assert by_context["opsgit/plan: b"][-1][0] == "success"
    assert [state for state, _ in by_context["opsgit/plan: c"]] == ["pending", "failure"]
    assert "unknown module 'ap'" in by_context["opsgit/plan: c"][-1][1]
    assert all(len(description) <= 140 for states in by_context.values() for _, description in states)
    assert "environment  add  change  destroy  result" in result.stdout
    assert TOKEN not in result.stdout + result.stderr
    assert len(github.comments) == 1 and "opsgit plans for" in github.comments[1]

    again = run(repo, github, "--status")  # the comment is edited in place, not added again
    assert again.returncode == 1 and len(github.comments) == 1


def test_missing_token_is_a_clear_error_before_any_work(repo: Path, github: GitHub) -> None:
    result = run(repo, github, "--status", token=None)
    assert result.returncode == 1
    assert "--status needs a token: GITHUB_TOKEN is not set" in result.stderr
    assert github.statuses == [] and "Traceback" not in result.stderr


def test_a_status_the_server_refuses_is_a_warning_not_a_different_result(repo: Path, github: GitHub) -> None:
    result = run(repo, github, "--status", token="wrong-token")
    assert "warning: status opsgit/plan: a = pending not posted" in result.stderr
    assert "wrong-token" not in result.stdout + result.stderr
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in result.stdout
    assert result.returncode == 1  # only because c failed


GITLAB_TOKEN = "glpat-s3cr3t-value-123"
GITLAB_STATES = ("pending", "running", "success", "failed", "canceled")


class GitLab(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), GitLabHandler)
        self.statuses: list[dict[str, str]] = []
        self.notes: dict[int, str] = {}


class GitLabHandler(JsonHandler):
    """GitLab's contract: POST /projects/:id/statuses/:sha with query parameters; merge-request
    notes under /projects/:id/merge_requests/:iid/notes; PRIVATE-TOKEN authenticates."""

    server: GitLab

    def _authorised(self) -> bool:
        if self.headers.get("PRIVATE-TOKEN") != GITLAB_TOKEN:
            self._reply(401, {"message": "401 Unauthorized"})
            return False
        return True

    def do_POST(self) -> None:
        if not self._authorised():
            return
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(self.path)
        if parts.path.startswith("/api/v4/projects/42/statuses/"):
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if query.get("state") not in GITLAB_STATES:
                return self._reply(400, {"message": "state is invalid"})
            self.server.statuses.append({"sha": parts.path.rsplit("/", 1)[1], **query})
            return self._reply(201, {"id": len(self.server.statuses)})
        if parts.path == "/api/v4/projects/42/merge_requests/5/notes":
            number = len(self.server.notes) + 1
            self.server.notes[number] = str(self._body()["body"])
            return self._reply(201, {"id": number})
        self._reply(404, {"message": "404 Not Found"})

    def do_GET(self) -> None:
        if not self._authorised():
            return
        if self.path.startswith("/api/v4/projects/42/merge_requests/5/notes"):
            return self._reply(200, [{"id": k, "body": v} for k, v in self.server.notes.items()])
        self._reply(404, {"message": "404 Not Found"})

    def do_PUT(self) -> None:
        if not self._authorised():
            return
        number = int(self.path.rsplit("/", 1)[1])
        self.server.notes[number] = str(self._body()["body"])
        self._reply(200, {"id": number})


def test_gitlab_statuses_and_one_merge_request_note(repo: Path) -> None:
    server = GitLab()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB_"))}
        env.update({"CI_API_V4_URL": f"http://127.0.0.1:{server.server_address[1]}/api/v4", "CI_PROJECT_ID": "42",
                    "CI_MERGE_REQUEST_IID": "5", "CI_JOB_URL": "https://gitlab.test/org/ops/-/jobs/7",
                    "CI_PROJECT_PATH": "org/ops", "GITLAB_TOKEN": GITLAB_TOKEN})
        for _ in range(2):
            result = run_opsgit("plan", "--affected", "--base", "main", "--status", cwd=repo, env=env, timeout=120)
            assert result.returncode == 1  # c's plan fails
    finally:
        server.shutdown()
        server.server_close()
    sha = git(repo, "rev-parse", "HEAD").strip()
    by_name: dict[str, list[str]] = {}
    for status in server.statuses:
        assert status["sha"] == sha and status["target_url"] == "https://gitlab.test/org/ops/-/jobs/7"
        by_name.setdefault(status["name"], []).append(status["state"])
    assert by_name["opsgit/plan: a"] == ["running", "success"] * 2
    assert by_name["opsgit/plan: c"] == ["running", "failed"] * 2
    assert len(server.notes) == 1 and "opsgit plans for" in server.notes[1]  # edited in place, not added
    assert GITLAB_TOKEN not in result.stdout + result.stderr


def actions_env(repo: Path, github: GitHub, event: dict[str, object] | None, sha: str) -> dict[str, str]:
    """The variables GitHub Actions sets, with a real event payload file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB_"))}
    env.update({"GITHUB_API_URL": f"http://127.0.0.1:{github.server_address[1]}", "GITHUB_REPOSITORY": "org/ops",
                "GITHUB_RUN_ID": "99", "GITHUB_SERVER_URL": "https://github.test", "GITHUB_TOKEN": TOKEN,
                "GITHUB_SHA": sha})
    if event is not None:
        path = repo.parent / "event.json"
        path.write_text(json.dumps(event))
        env.update({"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(path),
                    "GITHUB_REF": "refs/pull/7/merge"})
    else:
        env.update({"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main"})
    return env


def test_on_a_pull_request_statuses_go_on_its_head_not_githubs_merge_commit(repo: Path, github: GitHub) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    merge = "f" * 40  # GitHub's synthetic merge commit: GITHUB_SHA on pull_request events
    github.commits = {head}
    github.fail_next = 0
    event = {"pull_request": {"number": 7, "head": {"sha": head},
                              "base": {"sha": git(repo, "rev-parse", "main").strip()}}}
    env = actions_env(repo, github, event, merge)
    planned = run_opsgit("plan", "--env", "a", "--status", cwd=repo, env=env)
    assert planned.returncode == 0, planned.stderr
    assert {(s["sha"], s["context"], s["state"]) for s in github.statuses} == {
        (head, "opsgit/plan: a", "pending"), (head, "opsgit/plan: a", "success")}
    # checked out at something else than the head the pull request shows: nothing is posted
    git(repo, "checkout", "-q", "main")
    refused = run_opsgit("plan", "--env", "a", "--status", cwd=repo, env=env)
    assert refused.returncode == 1 and "the pull request shows" in refused.stderr and "Traceback" not in refused.stderr
    assert len(github.statuses) == 2
    # --sha wins
    explicit = run_opsgit("plan", "--env", "a", "--status", "--sha", head, cwd=repo, env=env)
    assert explicit.returncode == 0 and len(github.statuses) == 4, explicit.stderr


def test_apply_status_on_the_merged_commit_and_in_the_history(repo: Path, github: GitHub) -> None:
    github.fail_next = 0
    sha = git(repo, "rev-parse", "HEAD").strip()
    env = actions_env(repo, github, None, sha)
    applied = run_opsgit("apply", "--env", "a", "--auto-approve", "--status", cwd=repo, env=env)
    assert applied.returncode == 0, applied.stderr
    assert [(s["context"], s["state"], s["description"]) for s in github.statuses] == [
        ("opsgit/apply: a", "pending", "Applying…"),
        ("opsgit/apply: a", "success", "Apply complete! Resources: 2 added, 0 changed, 0 destroyed.")]
    assert all(s["sha"] == sha for s in github.statuses)
    history = run_opsgit("history", "--env", "a", "--json", cwd=repo, env=env)
    text = history.stdout.strip()
    entries = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines()]
    [applied_entry] = [e for e in entries if e["kind"] == "apply"]
    assert applied_entry["status"] == {"context": "opsgit/apply: a", "sha": sha,
                                       "url": "https://github.test/org/ops/actions/runs/99"}


def test_invoke_apply_status_posts_the_same_statuses(repo: Path, github: GitHub) -> None:
    """`invoke apply --status` is `opsgit apply --status`: the invoke task, run by invoke itself."""
    from tests.conftest import venv_bin

    github.fail_next = 0
    (repo / "tasks.py").write_text("from opsgit.tasks import ns  # noqa: F401\n")
    git(repo, "add", "tasks.py")
    git(repo, "commit", "-qm", "tasks")
    sha = git(repo, "rev-parse", "HEAD").strip()
    env = actions_env(repo, github, None, sha)
    env["PATH"] = f"{Path(venv_bin('invoke')).parent}:{os.environ['PATH']}"
    applied = subprocess.run([venv_bin("invoke"), "apply", "--env", "b", "--auto-approve", "--status"], cwd=repo,
                             env=env, capture_output=True, text=True, timeout=120, check=False)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert [(s["sha"], s["context"], s["state"], s["description"]) for s in github.statuses] == [
        (sha, "opsgit/apply: b", "pending", "Applying…"),
        (sha, "opsgit/apply: b", "success", "Apply complete! Resources: 2 added, 0 changed, 0 destroyed.")]


def test_a_dirty_tree_with_status_exits_1_and_posts_nothing(repo: Path, github: GitHub) -> None:
    (repo / "environments/a/env.yaml").write_text((repo / "environments/a/env.yaml").read_text() + "# wip\n")
    result = run(repo, github, "--status")
    assert result.returncode == 1 and "uncommitted changes in environments/a/env.yaml" in result.stderr
    assert "commit or stash them first" in result.stderr and github.statuses == [] and not github.comments
    env = actions_env(repo, github, None, git(repo, "rev-parse", "HEAD").strip())
    single = run_opsgit("plan", "--env", "a", "--status", cwd=repo, env=env)
    assert single.returncode == 1 and "uncommitted changes" in single.stderr and github.statuses == []
    listed = run_opsgit("affected", "--base", "main", cwd=repo)
    assert listed.returncode == 0 and "warning: uncommitted changes in environments/a/env.yaml" in listed.stderr


def workflow_command(job: str, env: str = "", before: str = "") -> list[str]:
    """The opsgit command a job of the shipped workflow runs (for a matrix entry `{env, action:
    plan}`; on a push whose previous head is `before`), read from `.github/workflows/opsgit.yml`
    itself so that the test runs what a team ships."""
    import shlex

    import yaml

    from tests.conftest import REPO_ROOT

    workflow = yaml.safe_load((REPO_ROOT / ".github/workflows/opsgit.yml").read_text())
    [run] = [step["run"] for step in workflow["jobs"][job]["steps"]
             if step.get("if", "matrix.action == 'plan'") == "matrix.action == 'plan'"
             and step.get("run", "").startswith("opsgit ")]
    words = shlex.split(run.replace("${{ matrix.env }}", env).replace("${{ github.event.before }}", before))
    assert words[0] == "opsgit", run
    return words[1:]


def test_a_pull_request_as_github_actions_runs_it(repo: Path, github: GitHub) -> None:
    """The shipped workflow's commands with GitHub Actions' variables and a real event payload:
    two matrix plan jobs at the same moment, then the push-to-main apply job."""
    import concurrent.futures

    head = git(repo, "rev-parse", "HEAD").strip()
    github.commits = {head}
    github.fail_next = 0
    event = {"pull_request": {"number": 7, "head": {"sha": head},
                              "base": {"sha": git(repo, "rev-parse", "main").strip()}}}
    env = actions_env(repo, github, event, "e" * 40)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        jobs = [pool.submit(run_opsgit, *workflow_command("plan", name), cwd=repo, env=env) for name in ("a", "b")]
        results = [job.result() for job in jobs]
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert {s["sha"] for s in github.statuses} == {head}
    assert len(github.comments) == 1  # one comment, whichever job made it
    [body] = github.comments.values()
    assert "| `a` | planned | Plan: 2 to add, 0 to change, 0 to destroy." in body
    assert "| `b` | planned | Plan: 2 to add, 0 to change, 0 to destroy." in body
    assert "To apply: merge this pull request" in body and "opsgit unlock --env" in body
    assert "https://github.test/org/ops/actions/runs/99" in body

    git(repo, "checkout", "-q", "main")
    before = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "merge", "-q", "--no-ff", "-m", "merge", "pr")
    merged = git(repo, "rev-parse", "HEAD").strip()
    github.commits.add(merged)
    push = actions_env(repo, github, None, merged)
    applied = run_opsgit(*workflow_command("apply", before=before), cwd=repo, env=push)
    assert applied.returncode == 1  # c, broken by the pull request, fails; a and b apply
    assert "  c                    FAILED: environments/c/env.yaml:3: unknown module 'ap'" in applied.stdout
    for name in ("a", "b"):
        assert [(s["sha"], s["state"]) for s in github.statuses if s["context"] == f"opsgit/apply: {name}"] == [
            (merged, "pending"), (merged, "success")]


def test_thirty_environments_fit_one_comment_each_summary_present(tmp_path: Path, github: GitHub) -> None:
    names = [f"env{i:02d}" for i in range(30)]
    files = {f"environments/{n}/env.yaml": "modules:\n  app:\n    source: app\n    inputs: {n: 1}\n" for n in names}
    files["modules/app/module.yaml"] = MODULE.replace("triggers: {index: \"${count.index}\"}",
                                                      "triggers: {index: \"${count.index}\", pad: \"{{ 'x' * 30 }}\"}")
    root = write_tree(tmp_path / "ops", {**files, "pyproject.toml": "[tool.opsgit]\n"})
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    git(root, "checkout", "-q", "-b", "pr")
    for n in names:
        (root / f"environments/{n}/env.yaml").write_text(files[f"environments/{n}/env.yaml"].replace("n: 1", "n: 120"))
    git(root, "commit", "-qam", "grow all")
    github.fail_next = 0
    result = run(root, github, "--status")
    assert result.returncode == 0, result.stderr
    [body] = github.comments.values()
    assert len(body) <= 65536
    rows = [line for line in body.splitlines() if line.startswith("| `env")]
    assert [row.split(" | ")[2] for row in rows] == ["Plan: 120 to add, 0 to change, 0 to destroy."] * 30, rows[:2]
    assert "more lines not shown here (GitHub's comment limit)" in body


def test_plan_status_is_plan_plus_statuses_every_flag_kept(repo: Path, github: GitHub) -> None:
    github.fail_next = 0
    env = actions_env(repo, github, None, git(repo, "rev-parse", "HEAD").strip())
    out = repo.parent / "a.plan.json"
    result = run_opsgit("plan", "--env", "a", "--status", "--json", "--out", str(out), "--target",
                        "module.app.null_resource.node[0]", "--parallelism", "2", "--detailed-exitcode",
                        cwd=repo, env=env)
    assert result.returncode == 2, result.stderr  # --detailed-exitcode: there are changes
    document = json.loads(result.stdout)  # --json
    assert [c["address"] for c in document["resource_changes"]] == ["module.app.null_resource.node[0]"]  # --target
    assert document["complete"] is False and out.exists()  # --out
    assert [s["state"] for s in github.statuses] == ["pending", "success"]
    destroy = run_opsgit("plan", "--env", "a", "--status", "--destroy", "--refresh", "false", cwd=repo, env=env)
    assert destroy.returncode == 0 and "No changes." in destroy.stdout, destroy.stdout + destroy.stderr


def test_plan_dependents_posts_their_plan_statuses_on_the_merged_commit(tmp_path: Path, github: GitHub) -> None:
    """The merge job's `apply --status --plan-dependents`: `opsgit/apply: global`, then
    `opsgit/plan: <env>` for exactly the environments that read the output the apply changed."""
    from tests.gitops.test_environments import make_repo, reader

    root = make_repo(tmp_path, {"names": reader("zone_name"), "ids": reader("zone_id")})
    for env in ("global", "names", "ids"):
        assert run_opsgit("apply", "--env", env, "--auto-approve", cwd=root).returncode == 0
    env_file = root / "environments/global/env.yaml"
    env_file.write_text(env_file.read_text().replace("zone_name: ops.internal", "zone_name: ops.example"))
    git(root, "commit", "-qam", "rename the zone")
    merged = git(root, "rev-parse", "HEAD").strip()
    github.commits, github.fail_next = {merged}, 0
    result = run_opsgit("apply", "--env", "global", "--auto-approve", "--status", "--plan-dependents", cwd=root,
                        env=actions_env(root, github, None, merged))
    assert result.returncode == 0, result.stdout + result.stderr
    posted = [(s["context"], s["state"]) for s in github.statuses]
    assert posted == [("opsgit/apply: global", "pending"), ("opsgit/apply: global", "success"),
                      ("opsgit/plan: names", "pending"), ("opsgit/plan: names", "success")]
    assert {s["sha"] for s in github.statuses} == {merged}
    assert "Plan: 1 to add, 0 to change, 1 to destroy." in github.statuses[-1]["description"]
