"""`/v1/event`: user events, as Consul's agent keeps them.

Consul's events travel by gossip and are never stored: each agent keeps the last 256 it
received (and only those whose node, service and tag filters match it), and forgets them on
restart. The dev agent is its datacenter's only member, so an event fired here is received here.
The list's index is not a Raft index but one folded from the newest event's ID, so a blocking
list waits while that index equals `?index` rather than until it grows."""

from __future__ import annotations

import re
import uuid

import msgpack

from opsgit.agent.core import ApiCore, UserEvent
from opsgit.agent.http import HttpRequest, HttpResponse
from opsgit.agent.shapes import json_response, wake
from opsgit.agent.store import StoreError

SIZE_LIMIT = 512  # serf's default UserEventSizeLimit, checked on the encoded event


def encoded_size(event: UserEvent) -> int:
    """The size serf checks: a version byte and the msgpack of Consul's UserEvent struct."""
    fields = {"ID": event.id, "Name": event.name, "Payload": event.payload, "NodeFilter": event.node_filter,
              "ServiceFilter": event.service_filter, "TagFilter": event.tag_filter, "Version": 1}
    return 1 + len(msgpack.packb(fields))


def event_index(event_id: str) -> int:
    """Consul's uuidToUint64: the UUID's high and low 64 bits XORed."""
    digits = event_id.replace("-", "")
    return int(digits[:16], 16) ^ int(digits[16:], 16)


def _pattern(text: str, what: str) -> re.Pattern[str] | None:
    if not text:
        return None
    try:
        return re.compile(text)
    except re.error as error:
        raise StoreError(500, f"Invalid {what} filter: {error}") from None


class EventsEndpoints(ApiCore):
    async def event_fire(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        name = match["name"]
        if not name:
            return HttpResponse(400, b"Missing name", content_type="text/plain")
        node_filter, service_filter, tag_filter = (request.arg(k) or "" for k in ("node", "service", "tag"))
        if tag_filter and not service_filter:
            raise StoreError(500, "Cannot provide tag filter without service filter")
        patterns = (_pattern(node_filter, "node"), _pattern(service_filter, "service"), _pattern(tag_filter, "tag"))
        buffer = self.events
        event = UserEvent(str(uuid.uuid4()), name, request.body, node_filter, service_filter, tag_filter,
                          (buffer[-1].ltime + 1) if buffer else 1)
        if encoded_size(event) > SIZE_LIMIT:
            raise StoreError(500, f"user event exceeds configured limit of {SIZE_LIMIT} bytes before encoding")
        if self._receives(*patterns):
            buffer.append(event)
            wake(self.table_waiters.pop("events", None))
        return json_response(event.to_json())

    def _receives(self, node: re.Pattern[str] | None, service: re.Pattern[str] | None,
                  tag: re.Pattern[str] | None) -> bool:
        """Consul's shouldProcessUserEvent: whether this agent keeps an event with these filters.
        The service filter is matched against the local services' IDs, as Consul matches it."""
        if node is not None and not node.search(self.store.node_name):
            return False
        if service is None:
            return True
        for service_id, fields in self._own_services().items():
            if service.search(service_id) and (tag is None or any(tag.search(t) for t in fields.get("Tags") or [])):
                return True
        return False

    async def event_list(self, request: HttpRequest, match: re.Match[str]) -> HttpResponse:
        # Consul's list reads `name` only (node, service and tag filter the receivers, at fire time).
        name = request.arg("name") or ""

        def compute() -> tuple[int, list[UserEvent]]:
            events = [e for e in self.events if not name or e.name == name]
            return (event_index(events[-1].id) if events else 1), events

        index, events = await self.blocking(request, compute, ("table", "events"),
                                            changed=lambda found, wanted: found != wanted)
        return json_response([e.to_json() for e in events], index)
