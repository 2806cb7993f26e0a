"""`opsgit agent --dev`: Consul's HTTP API on loopback, for local work and tests. Not a cluster."""
