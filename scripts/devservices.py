"""Start or stop the dev environment's local services: moto_server (the AWS API) and the opsgit
dev agent (Consul), in the background, on loopback. Used by `make demo` and `make demo-down`.

    python scripts/devservices.py up      # idempotent: starts only what is not running
    python scripts/devservices.py down    # stops what `up` started
"""

from __future__ import annotations

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
SERVICES = {
    "moto": ([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", "5000"], "http://127.0.0.1:5000/moto-api/"),
    "consul": ([sys.executable, "-m", "opsgit", "agent", "--dev", "--http-addr", "127.0.0.1:8500",
                "--data-dir", str(ROOT / ".opsgit" / "consul")], "http://127.0.0.1:8500/v1/status/leader"),
}


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


def up() -> None:
    RUN.mkdir(parents=True, exist_ok=True)
    for name, (command, url) in SERVICES.items():
        if answers(url):
            print(f"{name}: already running")
            continue
        log = (RUN / f"{name}.log").open("ab")
        process = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
                                   cwd=ROOT)
        (RUN / f"{name}.pid").write_text(str(process.pid))
        deadline = time.monotonic() + 30
        while not answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"error: {name} did not start; see {RUN / (name + '.log')}")
            time.sleep(0.2)
        print(f"{name}: started (pid {process.pid}, log {RUN.relative_to(ROOT) / (name + '.log')})")


def down() -> None:
    for name in SERVICES:
        pid_file = RUN / f"{name}.pid"
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text())
        try:
            os.killpg(pid, signal.SIGTERM)
            print(f"{name}: stopped (pid {pid})")
        except ProcessLookupError:
            pass
        pid_file.unlink()


if __name__ == "__main__":
    {"up": up, "down": down}[sys.argv[1] if len(sys.argv) > 1 else "up"]()
