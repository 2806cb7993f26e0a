"""`opsgit server`: the team's window — runs, locks, images, Consul health and alerts on web
pages, read from the same stores the CLI writes.

    sources.py   what the pages show, read from the run and history stores, the locks and images
    health.py    Consul's health kept current by blocking queries
    auth.py      sign-in with OPSGIT_SERVER_TOKEN, sessions and CSRF tokens
    app.py       the Starlette application: routes, templates, live updates (server-sent events)
"""
