"""Sign-in for the dashboard: a shared token (OPSGIT_SERVER_TOKEN) compared in constant time; a
signed-in session is a random id in an HttpOnly, SameSite=Strict cookie, kept in memory (a
restart signs everyone out), with its own CSRF token that every write form carries."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import threading
import time
from dataclasses import dataclass

COOKIE = "opsgit_session"
SESSION_SECONDS = 12 * 3600.0


@dataclass(frozen=True)
class Session:
    name: str
    csrf: str
    expires: float


class Sessions:
    def __init__(self, token: str | None) -> None:
        self.token = token
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    def sign_in(self, name: str, token: str) -> str | None:
        """A new session id when `token` is the server's; None otherwise."""
        if not self.token or not hmac.compare_digest(token.encode(), self.token.encode()):
            return None
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[session_id] = Session(name.strip()[:64] or "someone", secrets.token_urlsafe(32),
                                                 time.time() + SESSION_SECONDS)
        return session_id

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            found = self._sessions.get(session_id)
            if found is not None and found.expires < time.time():
                del self._sessions[session_id]
                return None
        return found

    def sign_out(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    @staticmethod
    def csrf_ok(session: Session | None, given: str | None) -> bool:
        return session is not None and bool(given) and hmac.compare_digest(session.csrf.encode(),
                                                                            str(given).encode())


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
