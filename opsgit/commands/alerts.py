"""`opsgit alerts [--notify URL]... [--change-threshold 60s]`: watch every Consul check and send
an alert when one goes critical and when it recovers; `--list` prints the alerts kept."""

from __future__ import annotations

from opsgit.commands.base import Arg, Command
from opsgit.commands.server import CHANGE_THRESHOLD, NOTIFY


def alerts(*, notify: list[str] | None = None, change_threshold: float = 60.0, listing: bool = False,
           as_json: bool = False) -> int:
    import threading

    from opsgit import output
    from opsgit.alerts.notify import notifiers
    from opsgit.alerts.store import AlertStore
    from opsgit.alerts.store import as_json as alert_json
    from opsgit.alerts.watcher import AlertWatcher, follow, resolve_urls
    from opsgit.config import find_root
    from opsgit.consul.client import Consul

    root = find_root()
    store = AlertStore(root / ".opsgit" / "alerts.sqlite")
    if listing:
        kept = store.recent(500)
        if as_json:
            output.emit_json([alert_json(a) for a in kept])
        elif not kept:
            output.say("No alerts yet.")
        else:
            output.say(f"{'WHEN':<25}  {'STATE':<8}  ALERT  (DELIVERY)")
            for alert in reversed(kept):
                output.say(f"{alert.at:<25}  {alert.state:<8}  {alert.message}  ({alert.delivery})")
        return 0
    destinations = notifiers(resolve_urls(root, notify or []))
    watcher = AlertWatcher(store, destinations, change_threshold, on_alert=lambda message: output.say(message))
    consul = Consul()
    output.log(f"watching every check in Consul at {consul.address}; alerts after {change_threshold:g}s in a new "
               f"state, to {', '.join(d.name for d in destinations) or 'no notifier (kept in .opsgit/alerts.sqlite)'}")
    stop = threading.Event()
    try:
        follow(consul, watcher, stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


COMMANDS = (Command("alerts", "watch Consul's checks and send an alert when one goes critical or recovers",
                    lambda a: alerts(notify=a.notify, change_threshold=a.change_threshold, listing=a.list,
                                     as_json=a.json), args=(
    NOTIFY,
    CHANGE_THRESHOLD,
    Arg("--list", "print the alerts kept, then exit", kind="bool"),
    Arg("--json", "with --list: as JSON", kind="bool"),
)),)
