"""Start or stop the dev environment's local services: moto_server (the AWS API) and the opsgit
dev agent (Consul), in the background, on loopback. Used by `make demo` and `make demo-down`.

    python scripts/devservices.py up         # idempotent: starts only what is not running
    python scripts/devservices.py dashboard  # `opsgit server --alerts` on the demo's services
    python scripts/devservices.py down       # stops what `up` and `dashboard` started, in this checkout only

Ports: OPSGIT_DEMO_AWS_PORT (default 5000), OPSGIT_DEMO_CONSUL_PORT (default 8500) and
OPSGIT_DEMO_DASHBOARD_PORT (default 8800), so two
checkouts on one machine can each run the demo. A service counts as running only when the
process on its port is this checkout's own (its pid file, and that process's command line is
the one this script starts); a port held by anything else is an error naming the variable.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / ".opsgit" / "run"
BIN = Path(sys.executable).parent
AWS_PORT = int(os.environ.get("OPSGIT_DEMO_AWS_PORT") or 5000)
CONSUL_PORT = int(os.environ.get("OPSGIT_DEMO_CONSUL_PORT") or 8500)
DASHBOARD_PORT = int(os.environ.get("OPSGIT_DEMO_DASHBOARD_PORT") or 8800)
# Consul's own pair: HTTP 8500, DNS 8600; another HTTP port moves DNS with it
DNS_PORT = int(os.environ.get("OPSGIT_DEMO_DNS_PORT") or CONSUL_PORT + 100)
DEMO_ENV = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{AWS_PORT}", "AWS_ACCESS_KEY_ID": "dev",
            "AWS_SECRET_ACCESS_KEY": "dev", "AWS_DEFAULT_REGION": "us-east-1",
            "CONSUL_HTTP_ADDR": f"127.0.0.1:{CONSUL_PORT}"}
SERVICES = {
    "moto": ([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(AWS_PORT)],
             f"http://127.0.0.1:{AWS_PORT}/moto-api/", "OPSGIT_DEMO_AWS_PORT"),
    "consul": ([sys.executable, "-m", "opsgit", "agent", "--dev", "--http-addr", f"127.0.0.1:{CONSUL_PORT}",
                "--data-dir", str(ROOT / ".opsgit" / "consul"), "--dns-addr", f"127.0.0.1:{DNS_PORT}"],
               f"http://127.0.0.1:{CONSUL_PORT}/v1/status/leader",
               "OPSGIT_DEMO_CONSUL_PORT"),
    "dashboard": ([sys.executable, "-m", "opsgit", "server", "--http-addr", f"127.0.0.1:{DASHBOARD_PORT}", "--alerts",
                   "--change-threshold", "10s"], f"http://127.0.0.1:{DASHBOARD_PORT}/login",
                  "OPSGIT_DEMO_DASHBOARD_PORT"),
}
BACKGROUND = ("moto", "consul")  # what `up` starts; the dashboard comes last, once the demo has run


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


def ours(name: str, command: list[str] | None = None) -> int | None:
    """The pid of this checkout's own running `name`, if it runs: its pid file names a live
    process whose command line is exactly `command` (without one: a command line of this
    checkout's, its virtual environment's binary or its data directory, whichever port)."""
    pid_file = RUN / f"{name}.pid"
    try:
        pid = int(pid_file.read_text())
        running = [p.decode() for p in (Path("/proc") / str(pid) / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")]
    except (OSError, ValueError):
        return None
    # a console script runs as `python script ...`: its command line ends with the command started
    started = running[-len(command):] == command[-len(running):] if command else False
    if command is not None:
        return pid if started else None
    if started or any(str(ROOT) in part for part in running):
        return pid
    try:  # the dashboard's command line names no path of the checkout: it runs in it
        return pid if (Path("/proc") / str(pid) / "cwd").resolve() == ROOT else None
    except OSError:
        return None


def up() -> None:
    print(f"demo services: AWS API (moto_server) on 127.0.0.1:{AWS_PORT}, Consul (opsgit agent) on "
          f"127.0.0.1:{CONSUL_PORT} (DNS on 127.0.0.1:{DNS_PORT})")
    start(BACKGROUND)
    bootstrap_state_bucket()


def bootstrap_state_bucket() -> None:
    """The team's one step by hand, done here in moto_server: the versioned buckets that hold the
    environments' S3 state (global's, staging's and prod's in the example) — a bucket cannot hold
    the state of the run that creates it. Named by the env.yaml files; moto keeps nothing across
    restarts, so every `up` makes sure they are there."""
    import boto3

    from opsgit.errors import UserError
    from opsgit.repo.load import environment_names, load_environment

    buckets = set()
    for name in environment_names(ROOT):
        try:
            state = load_environment(ROOT, name).state
        except UserError:
            continue  # `opsgit validate` says what is wrong with it
        if state.get("backend") == "s3":
            buckets.add(str(state["bucket"]))
    s3 = boto3.client("s3", endpoint_url=DEMO_ENV["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="dev", aws_secret_access_key="dev")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in sorted(buckets - existing):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        print(f"state bucket: s3://{bucket} created in moto_server (the bootstrap a team does once by hand)")


def dashboard() -> None:
    start(("dashboard",))
    print(f"The dashboard: http://127.0.0.1:{DASHBOARD_PORT}/ (runs, locks, images, Consul health, alerts; "
          "sign in to unlock with OPSGIT_SERVER_TOKEN set)")


def start(names: tuple[str, ...]) -> None:
    RUN.mkdir(parents=True, exist_ok=True)
    for name in names:
        command, url, variable = SERVICES[name]
        pid = ours(name, command)
        if pid is not None and answers(url):
            print(f"{name}: already running (pid {pid}, this checkout's)")
            continue
        if answers(url):
            sys.exit(f"error: {url.split('/')[2]} is in use by a process this checkout did not start; "
                     f"set {variable} to a free port (make demo {variable}=...)")
        log = (RUN / f"{name}.log").open("ab")
        process = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
                                   cwd=ROOT, env={**os.environ, **DEMO_ENV})
        (RUN / f"{name}.pid").write_text(str(process.pid))
        deadline = time.monotonic() + 30
        while not answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"error: {name} did not start; see {RUN / (name + '.log')}")
            time.sleep(0.2)
        print(f"{name}: started (pid {process.pid}, log {RUN.relative_to(ROOT) / (name + '.log')})")


def down() -> None:
    for name, (command, _, _) in SERVICES.items():
        pid_file = RUN / f"{name}.pid"
        if not pid_file.exists():
            continue
        pid = ours(name, command) or ours(name)
        if pid is not None and stop_group(pid):
            print(f"{name}: stopped (pid {pid})")
        pid_file.unlink()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def stop_group(pid: int, grace: float = 10.0) -> bool:
    """SIGTERM the service's process group and wait until it is gone (SIGKILL after `grace`):
    "stopped" means its port is free, not that a signal was sent. False if it was already gone."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        if _zombie(pid):  # exited; only a parent that never reaps keeps its entry (init in some containers)
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True


if __name__ == "__main__":
    {"up": up, "dashboard": dashboard, "down": down}[sys.argv[1] if len(sys.argv) > 1 else "up"]()
