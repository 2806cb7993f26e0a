"""GitOps: what a diff affects, run locks, commit statuses, run history."""
