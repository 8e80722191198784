"""A raw reader of Server-Sent Events, as a client sees them on the wire: no SSE library in between."""

import json
from dataclasses import dataclass


@dataclass
class Event:
    name: str
    id: int
    data: dict


def read_events(response, limit: int | None = None) -> tuple[list[Event], list[str]]:
    """Events of a streamed `requests` response until the server ends it (or `limit` events), and
    every comment line seen meanwhile."""
    events: list[Event] = []
    comments: list[str] = []
    fields: dict[str, str] = {}
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith(":"):
            comments.append(line)
        elif line:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        elif "event" in fields:
            events.append(Event(fields["event"], int(fields["id"]), json.loads(fields["data"])))
            fields = {}
            if limit is not None and len(events) == limit:
                break
        else:
            fields = {}
    return events, comments
