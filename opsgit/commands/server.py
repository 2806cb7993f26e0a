"""`opsgit server [--http-addr 127.0.0.1:8800] [--alerts]`: the web dashboard — runs, locks,
images, Consul health and alerts — read from the stores the CLI writes."""

from __future__ import annotations

from opsgit.commands.base import Arg, Command

DEFAULT_ADDR = "127.0.0.1:8800"


def split_address(address: str) -> tuple[str, int]:
    from opsgit.errors import UserError

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--http-addr {address!r} is not HOST:PORT", hint=f"for example {DEFAULT_ADDR}")
    return host.strip("[]"), int(port)


def server(http_addr: str = DEFAULT_ADDR, *, alerts: bool = False, notify: list[str] | None = None,
           change_threshold: float = 60.0) -> int:
    import os
    import threading

    from opsgit import output
    from opsgit.config import find_root
    from opsgit.consul.client import Consul
    from opsgit.errors import UserError
    from opsgit.secrets import register
    from opsgit.server.auth import Sessions, is_loopback

    try:
        import uvicorn

        from opsgit.server.app import create_app
        from opsgit.server.health import HealthWatch
    except ImportError as error:
        raise UserError(f"the dashboard needs {error.name}", hint="pip install 'opsgit[server]'") from None
    host, port = split_address(http_addr)
    token = os.environ.get("OPSGIT_SERVER_TOKEN") or None
    if token:
        register(token)
    loopback = is_loopback(host)
    if not loopback and not token:
        raise UserError(f"opsgit server on {host} (not a loopback address) needs sign-in for every page",
                        hint="set OPSGIT_SERVER_TOKEN to a long random token, or bind 127.0.0.1")
    root = find_root()
    health = HealthWatch(Consul())
    health.start()
    alerts_db = root / ".opsgit" / "alerts.sqlite"
    stop = threading.Event()
    if alerts:
        from opsgit.alerts.watcher import start_alerts

        start_alerts(root, notify or [], change_threshold, stop)
    app = create_app(root, Sessions(token), reads_need_sign_in=not loopback, health=health, alerts_db=alerts_db)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=2)
    output.say(f"opsgit server on http://{host if ':' not in host else f'[{host}]'}:{port}/"
               + ("" if token else " (read-only: set OPSGIT_SERVER_TOKEN to sign in and unlock)")
               + (" with alerts" if alerts else ""))
    try:
        uvicorn.Server(config).run()
    finally:
        stop.set()
        health.stop()
    return 0


NOTIFY = Arg("--notify", "send alerts here: an Apprise URL (slack://, msteams://, matrix://, mailto://, json://, ...) "
             "or a plain http(s):// webhook; repeat for more (default: [tool.opsgit.alerts] notify)",
             kind="list", metavar="URL")
CHANGE_THRESHOLD = Arg("--change-threshold", "alert only when a check keeps its new state this long, so a "
                       "flapping check does not spam (default 60s)", kind="duration", default=60.0,
                       metavar="DURATION")

COMMANDS = (Command("server", "the web dashboard: runs, locks, images, Consul health, alerts",
                    lambda a: server(a.http_addr, alerts=a.alerts, notify=a.notify,
                                     change_threshold=a.change_threshold), args=(
    Arg("--http-addr", f"listen here (default {DEFAULT_ADDR}; another address than loopback needs "
        "OPSGIT_SERVER_TOKEN)", default=DEFAULT_ADDR, metavar="HOST:PORT"),
    Arg("--alerts", "also watch Consul's checks and send alerts (as `opsgit alerts` does)", kind="bool"),
    NOTIFY,
    CHANGE_THRESHOLD,
)),)
