"""Alerts from Consul's health checks, as consul-alerts sent them: a check that goes critical
(or warning) and stays so for the change threshold becomes an alert, and so does its recovery;
each is kept in SQLite under `.opsgit/` and sent to every notifier.

    store.py     the SQLite file: what each check was last seen as and last alerted as, every alert
    notify.py    notifiers behind one protocol: Apprise URLs and plain JSON webhooks
    watcher.py   the blocking query on /v1/health/state/any and the threshold
"""
