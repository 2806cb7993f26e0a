"""The repository's own policy checks, loaded by checkov (`opsgit plan` runs it with
`--external-checks-dir policies`)."""
