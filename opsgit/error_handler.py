"""The one top-level handler: exceptions become exit codes and one-line messages."""

from __future__ import annotations

import datetime
import os
import sys
import tempfile
import traceback
from collections.abc import Callable

from opsgit import __version__
from opsgit.errors import UserError
from opsgit.secrets import redact

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_CHANGES = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130


def run_guarded(action: Callable[[], int]) -> int:
    """Run one command function and turn whatever it raises into an exit code."""
    try:
        return action()
    except UserError as error:
        print(f"error: {redact(str(error))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("Interrupted (^C)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `opsgit render --json | head`: the reader left; that is not our failure.
        sys.stderr.close()
        return EXIT_OK
    except Exception as error:
        from opsgit.awsclients import as_user_error

        known = as_user_error(error)
        if known is not None:  # a credential or endpoint problem is the user's to fix, not a bug
            print(f"error: {redact(str(known))}", file=sys.stderr)
            return EXIT_USER_ERROR
        log = _write_crash_log(error)
        print(f"error: unexpected {type(error).__name__}: {redact(str(error))} (a bug in opsgit; details in {log})",
              file=sys.stderr)
        return EXIT_BUG


def _write_crash_log(error: BaseException) -> str:
    """The traceback, masked like all output, in the project's `.opsgit/crash/` (mode 0600): not
    the shared temporary directory, where other users of the machine could read it."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    directory = _crash_directory()
    fd, path = tempfile.mkstemp(prefix=f"opsgit-crash-{stamp}-", suffix=".log", dir=directory)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as log:
        log.write(f"opsgit {__version__} on Python {sys.version.split()[0]}\n")
        log.write(redact(f"argv: {sys.argv!r}\n\n"))
        log.write(redact("".join(traceback.format_exception(error))))
    return path


def _crash_directory() -> str | None:
    from opsgit.config import find_root

    try:
        directory = find_root() / ".opsgit" / "crash"
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except (UserError, OSError):
        return None  # outside a monorepo (or it is not writable): a private file in the temp directory
    return str(directory)
