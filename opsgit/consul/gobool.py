"""Go's strconv.ParseBool: how Consul reads its boolean query parameters and filter values, and
how Go's flag package reads `-flag=false` on a `consul lock` command line."""

from __future__ import annotations

GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
            "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}
