"""Render: the one Jinja environment, and one module per artefact kind."""
