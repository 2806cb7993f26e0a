"""The dev agent's HTTP endpoints, one module per family of Consul's API."""
