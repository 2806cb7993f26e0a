"""The dashboard as a Starlette application: pages rendered on the server with Jinja, live
updates over server-sent events, one small script (static/live.js), no build step.

Reads need no sign-in on a loopback address, writes (unlock) always do: a signed-in session
and the session's CSRF token in the form. Bound to any other address, every page needs sign-in.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from opsgit.secrets import redact
from opsgit.server.auth import COOKIE, Session, Sessions
from opsgit.server.health import HealthWatch
from opsgit.server.sources import Sources

HERE = Path(__file__).parent
RUNS_SHOWN = 50  # an environment page's runs, newest first
LIVE_POLL = 0.5  # how often a live page re-reads a run from its store (files or S3)
STATUS_NAMES = {"planned": "PLANNED", "no_changes": "NO CHANGES", "applied": "APPLIED", "errored": "ERRORED",
                "interrupted": "INTERRUPTED", "running": "RUNNING", "discarded": "DISCARDED", "drift": "DRIFTED",
                "no_drift": "NO DRIFT", "built": "BUILT"}
_ENV_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def line_class(line: str) -> str:
    """The terminal's colour of a plan or apply line, as a CSS class."""
    stripped = line.lstrip()
    if stripped.startswith("-/+") or stripped.startswith("+/-"):
        return "replace"
    if stripped.startswith(("+ ", "+\t")) or stripped == "+" or "will be created" in line:
        return "create"
    if stripped.startswith(("- ", "-\t")) or "will be destroyed" in line:
        return "delete"
    if stripped.startswith(("~ ", "~\t")) or "will be updated" in line:
        return "update"
    if stripped.startswith(("Error", "error:")) or "failed" in stripped.split(":", 1)[0]:
        return "error"
    if stripped.startswith(("Apply complete!", "Plan:", "No changes.")):
        return "summary"
    return ""


class Dashboard:
    def __init__(self, root: Path, sessions: Sessions, *, reads_need_sign_in: bool,
                 health: HealthWatch | None, alerts_db: Path | None) -> None:
        self.sources = Sources(root)
        self.sessions = sessions
        self.reads_need_sign_in = reads_need_sign_in
        self.health = health
        self.alerts_db = alerts_db
        self.jinja = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                        finalize=lambda v: redact(v) if isinstance(v, str) else v)
        self.jinja.filters["line_class"] = line_class
        self.jinja.filters["status_name"] = lambda s: STATUS_NAMES.get(str(s), str(s).upper())
        self.jinja.filters["short"] = lambda s: str(s or "")[:10]
        self.jinja.filters["when"] = lambda s: str(s or "").replace("T", " ")[:19]

    # -- helpers ------------------------------------------------------------------------

    def session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def page(self, request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        session = self.session(request)
        body = self.jinja.get_template(template).render(session=session, sign_in=self.sessions.enabled,
                                                        path=request.url.path, **values)
        return HTMLResponse(body, status_code=status_code)

    def environment_or_404(self, env: str) -> str:
        if not _ENV_NAME.match(env) or env not in self.sources.names():
            raise _NotFound(f"no environment {env!r}")
        return env

    # -- pages --------------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        views = [self.sources.overview(env) for env in self.sources.names()]
        health = self.health.snapshot() if self.health is not None else None
        return self.page(request, "overview.html", environments=views, health=health,
                         health_error=self.health.error if self.health is not None else None)

    def environment(self, request: Request) -> Response:
        env = self.environment_or_404(request.path_params["env"])
        view = self.sources.overview(env, RUNS_SHOWN)
        if view.error is not None:
            return self.page(request, "environment.html", env=env, view=view, runs=[], history=[], images=[],
                             promoted={})
        return self.page(request, "environment.html", env=env, view=view, runs=view.runs,
                         history=[h for h in reversed(self.sources.history(env)) if h.get("kind") == "unlock"][:10],
                         images=self.sources.image_builds(env, 10), promoted=self.sources.promoted(env))

    def runs_fragment(self, request: Request) -> Response:
        env = self.environment_or_404(request.path_params["env"])
        return self.page(request, "runs_table.html", env=env, runs=self.sources.runs(env, RUNS_SHOWN))

    def run(self, request: Request) -> Response:
        env = self.environment_or_404(request.path_params["env"])
        number = int(request.path_params["number"])
        found = self.sources.run(env, number)
        if found is None:
            raise _NotFound(f"environment {env} has no run #{number}")
        return self.page(request, "run.html", env=env, run=found.to_json(),
                         log=self.sources.log(env, number).splitlines())

    def graph(self, request: Request) -> Response:
        from opsgit.graph.dot import to_dot, to_svg
        from opsgit.workspace import open_workspace

        env = self.environment_or_404(request.path_params["env"])
        actions, removed = None, None
        if "number" in request.path_params:
            found = self.sources.run(env, int(request.path_params["number"]))
            if found is None:
                raise _NotFound("no such run")
            actions = {a: tuple(c) for a, c in (found.record.get("changes") or {}).items()}
            removed = {a: () for a in actions if actions[a] == ("delete",)}
        svg = to_svg(to_dot(open_workspace(env).graph, actions, removed))
        return Response(svg, media_type="image/svg+xml")

    def locks(self, request: Request) -> Response:
        return self.page(request, "locks.html", locks=[(env, self.sources.lock(env)) for env in self.sources.names()])

    def images(self, request: Request) -> Response:
        builds = []
        promoted: dict[str, Mapping[str, str]] = {}
        for env in self.sources.names():
            try:
                promoted[env] = self.sources.promoted(env)
                for build in self.sources.image_builds(env):
                    built = [i["image_id"] for i in build.record.get("images") or []]
                    role = str(build.record.get("role", "?"))
                    builds.append((env, role, build, promoted[env].get(role) in built if built else False))
            except Exception:
                continue
        builds.sort(key=lambda b: (b[1], b[0], -b[2].number))
        return self.page(request, "images.html", builds=builds, promoted=promoted)

    def consul(self, request: Request) -> Response:
        if self.health is None:
            return self.page(request, "consul.html", health=None, error="Consul is not watched by this server",
                             services=[], nodes=[], query="", hide_healthy=False)
        health = self.health.snapshot()
        query = request.query_params.get("filter", "").strip().lower()
        hide_healthy = request.query_params.get("hide_healthy") == "1"
        services = [s for s in health.services if (not query or query in s.name.lower())
                    and not (hide_healthy and s.status == "passing")]
        nodes = [n for n in health.nodes if (not query or query in n.name.lower())
                 and not (hide_healthy and n.status == "passing")]
        template = "consul_body.html" if request.query_params.get("fragment") else "consul.html"
        return self.page(request, template, health=health, error=self.health.error, services=services,
                         nodes=nodes, query=query, hide_healthy=hide_healthy, version=self.health.version)

    def alerts(self, request: Request) -> Response:
        from opsgit.alerts.store import AlertStore

        rows = AlertStore(self.alerts_db).recent(200) if self.alerts_db is not None and self.alerts_db.exists() else []
        return self.page(request, "alerts.html", alerts=rows)

    # -- signing in and writing ---------------------------------------------------------

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return self.page(request, "login.html", error=None, next=request.query_params.get("next", "/"))
        form = await request.form()
        target = str(form.get("next") or "/")
        target = target if target.startswith("/") and not target.startswith("//") else "/"
        session_id = self.sessions.sign_in(str(form.get("name") or ""), str(form.get("token") or ""))
        if session_id is None:
            message = ("Wrong token." if self.sessions.enabled else
                       "Sign-in is off: start the server with OPSGIT_SERVER_TOKEN set.")
            return self.page(request, "login.html", status_code=403, error=message, next=target)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, session_id, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")
        return response

    async def logout(self, request: Request) -> Response:
        form = await request.form()
        session = self.session(request)
        if not Sessions.csrf_ok(session, str(form.get("csrf") or "")):
            return PlainTextResponse("CSRF token missing or wrong", status_code=403)
        self.sessions.sign_out(request.cookies.get(COOKIE))
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def unlock(self, request: Request) -> Response:
        env = self.environment_or_404(request.path_params["env"])
        session = self.session(request)
        if session is None and request.method == "POST":
            return PlainTextResponse("sign in to unlock", status_code=403)
        if session is None:
            return RedirectResponse(f"/login?next=/environments/{env}/unlock", status_code=303)
        if request.method == "GET":
            return self.page(request, "unlock.html", env=env, lock=await asyncio.to_thread(self.sources.lock, env))
        form = await request.form()
        if not Sessions.csrf_ok(session, str(form.get("csrf") or "")):
            return PlainTextResponse("CSRF token missing or wrong", status_code=403)
        await asyncio.to_thread(self.sources.unlock, env, session.name)
        return RedirectResponse(f"/environments/{env}", status_code=303)

    # -- live updates -------------------------------------------------------------------

    async def run_events(self, request: Request) -> Response:
        env = self.environment_or_404(request.path_params["env"])
        number = int(request.path_params["number"])
        offset = int(request.query_params.get("offset", "0"))

        async def events() -> AsyncIterator[str]:
            nonlocal offset
            last: Any = None
            while not await request.is_disconnected():
                text = await asyncio.to_thread(self.sources.log, env, number, offset)
                if text:
                    offset += len(text)
                    lines = [{"text": redact(line), "class": line_class(line)} for line in text.splitlines()]
                    yield _event("log", {"lines": lines, "offset": offset})
                found = await asyncio.to_thread(self.sources.run, env, number)
                record = found.to_json() if found is not None else {}
                state = {k: record.get(k) for k in ("status", "progress", "summary", "duration_seconds")}
                if state != last:
                    last = state
                    yield _event("status", {**state, "name": STATUS_NAMES.get(str(state["status"]), "")})
                if state["status"] != "running" and not text:  # settled (or interrupted), all of it sent
                    yield _event("end", {})
                    return
                await asyncio.sleep(LIVE_POLL)

        return _stream(events())

    async def environment_events(self, request: Request) -> Response:
        env = self.environment_or_404(request.path_params["env"])

        async def events() -> AsyncIterator[str]:
            last: Any = None
            while not await request.is_disconnected():
                runs = await asyncio.to_thread(self.sources.runs, env, 20)
                lock = await asyncio.to_thread(self.sources.lock, env)
                seen = ([(r.number, r.status, json.dumps(r.record.get("progress"))) for r in runs], lock.sentence)
                if seen != last:
                    if last is not None:
                        yield _event("changed", {})
                    last = seen
                await asyncio.sleep(LIVE_POLL)

        return _stream(events())

    async def consul_events(self, request: Request) -> Response:
        health = self.health

        async def events() -> AsyncIterator[str]:
            if health is None:
                return
            seen = health.version
            while not await request.is_disconnected():
                now = await asyncio.to_thread(health.wait_for_change, seen, 15.0)
                if now != seen:
                    seen = now
                    yield _event("changed", {"version": now})
                else:
                    yield ": keep-alive\n\n"

        return _stream(events())


class _NotFound(Exception):
    pass


def _event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def _stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


class _Guard(BaseHTTPMiddleware):
    """Sign-in for every page when the server is bound beyond loopback; security headers."""

    def __init__(self, app: Any, dashboard: Dashboard) -> None:
        super().__init__(app)
        self.dashboard = dashboard

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        open_paths = request.url.path in ("/login",) or request.url.path.startswith("/static/")
        if self.dashboard.reads_need_sign_in and not open_paths and self.dashboard.session(request) is None:
            if request.url.path.endswith("/events"):
                return PlainTextResponse("sign in first", status_code=401)
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        try:
            response = await call_next(request)
        except _NotFound as missing:
            response = PlainTextResponse(str(missing), status_code=404)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def create_app(root: Path, sessions: Sessions, *, reads_need_sign_in: bool, health: HealthWatch | None,
               alerts_db: Path | None) -> Starlette:
    dashboard = Dashboard(root, sessions, reads_need_sign_in=reads_need_sign_in, health=health,
                          alerts_db=alerts_db)
    routes = [
        Route("/", dashboard.overview),
        Route("/login", dashboard.login, methods=["GET", "POST"]),
        Route("/logout", dashboard.logout, methods=["POST"]),
        Route("/locks", dashboard.locks),
        Route("/images", dashboard.images),
        Route("/consul", dashboard.consul),
        Route("/consul/events", dashboard.consul_events),
        Route("/alerts", dashboard.alerts),
        Route("/environments/{env}", dashboard.environment),
        Route("/environments/{env}/runs", dashboard.runs_fragment),
        Route("/environments/{env}/events", dashboard.environment_events),
        Route("/environments/{env}/graph.svg", dashboard.graph),
        Route("/environments/{env}/unlock", dashboard.unlock, methods=["GET", "POST"]),
        Route("/environments/{env}/runs/{number:int}", dashboard.run),
        Route("/environments/{env}/runs/{number:int}/events", dashboard.run_events),
        Route("/environments/{env}/runs/{number:int}/graph.svg", dashboard.graph),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(_Guard, dashboard=dashboard)])
