"""Where alerts go, behind one protocol with an explicit registry: any Apprise URL (Slack,
Microsoft Teams, Matrix, e-mail, Discord, json:// webhooks and a hundred more, Apprise being the
well-kept library for this), or a plain http(s):// webhook that receives the alert as JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from opsgit.errors import UserError
from opsgit.secrets import register

TIMEOUT = 10.0


class Notifier(Protocol):
    """One destination of alerts."""

    # for the delivery record: the scheme and host, never the URL (it often holds a token)
    name: str

    # deliver one alert; raises on failure
    def send(self, title: str, body: str, alert: Mapping[str, Any]) -> None: ...


class AppriseNotifier:
    def __init__(self, url: str) -> None:
        try:
            import apprise
        except ImportError:
            raise UserError("Apprise URLs need the apprise package", hint="pip install 'opsgit[server]'") from None
        self._apprise = apprise.Apprise()
        if not self._apprise.add(url):
            # the scheme only: the rest of such a URL is usually its token
            raise UserError(f"not a URL Apprise knows: {url.split('://', 1)[0]}://...",
                            hint="see https://github.com/caronc/apprise/wiki for the URL of each service")
        self.name = url.split("://", 1)[0] + "://"

    def send(self, title: str, body: str, alert: Mapping[str, Any]) -> None:
        if not self._apprise.notify(title=title, body=body):
            raise RuntimeError("Apprise could not deliver it")


class WebhookNotifier:
    def __init__(self, url: str) -> None:
        from urllib.parse import urlsplit

        self.url = url
        self.name = f"webhook {urlsplit(url).hostname}"

    def send(self, title: str, body: str, alert: Mapping[str, Any]) -> None:
        import requests

        response = requests.post(self.url, json={"title": title, "text": body, **alert}, timeout=TIMEOUT)
        response.raise_for_status()


NOTIFIERS: Mapping[str, type[AppriseNotifier] | type[WebhookNotifier]] = {
    "webhook": WebhookNotifier, "apprise": AppriseNotifier}


def notifier_for(url: str) -> Notifier:
    """A plain http(s):// URL is a webhook; everything else is an Apprise URL."""
    register(url)  # webhook URLs carry their tokens: masked wherever they might be shown
    kind = "webhook" if url.startswith(("http://", "https://")) else "apprise"
    return NOTIFIERS[kind](url)


def notifiers(urls: Sequence[str]) -> list[Notifier]:
    return [notifier_for(url) for url in urls]
