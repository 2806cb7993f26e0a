"""The engine: resource graphs, plans, state and apply."""
