"""One module per command; each exposes a typed function returning an exit code."""
