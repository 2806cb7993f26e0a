"""Terraform provider plugins driven over their gRPC protocol: any provider binary serves opsgit.

The data flow inside: `discovery` finds the binary (Terraform's mirror layouts, checked against
the repository's lock file), `process` starts it and completes go-plugin's handshake, `stubs`
loads the protocol's messages, `cty` encodes values the way the provider's schema types them,
`schema` turns the provider's schema into types and flags (cached on disk by binary hash), and
`resources` serves each of its resource types to opsgit's engine.
"""
