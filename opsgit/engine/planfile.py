"""Saved plans: `build/plans/<env>.plan.json` (mode 0600, written atomically), and reading one back."""

from __future__ import annotations

import json
import os
from pathlib import Path

from opsgit.engine.plan import Plan
from opsgit.errors import UserError


def save_plan(plan: Plan, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(plan.to_file(), sort_keys=True, indent=1))
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def read_plan(path: Path) -> Plan:
    try:
        return Plan.from_file(json.loads(path.read_text()))
    except FileNotFoundError:
        raise UserError(f"no saved plan at {path}", hint="make one with `opsgit plan --env ENV`") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory, not a saved plan", hint="name the plan file itself") from None
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"not a saved opsgit plan: {error}", file=str(path)) from None
