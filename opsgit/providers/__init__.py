"""Providers: one module per provider behind the `Provider` protocol, found through `REGISTRY`."""
