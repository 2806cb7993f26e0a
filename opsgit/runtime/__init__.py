"""Tools that run on hosts: child supervision, `opsgit lock`, later `template` and `exec`."""
