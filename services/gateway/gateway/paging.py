"""Pages of GET /jobs: the `limit` a caller may ask for, and the opaque cursor that continues a walk.

A cursor names the last job of a page by its sort key (created_at to the millisecond, as MongoDB
keeps it, and _id), so the next page starts right after it however many jobs are created meanwhile.
It is written as one hex token: the milliseconds, then the 24 hex digits of the id. Every string of
CURSOR's shape reads as a key, so openapi.yaml's pattern for it is exact.
"""

import re
from datetime import UTC, datetime

from bson import ObjectId

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# At most 11 hex digits of milliseconds: any such time is a valid date (before the year 2528).
CURSOR = re.compile(r"([0-9a-f]{1,11})([0-9a-f]{24})")


class BadPage(ValueError):
    """A limit or cursor the caller must fix; the text says how."""


def limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadPage(f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    return int(text)


def cursor_of(job: dict) -> str:
    """The cursor that continues after this job."""
    return f"{int(job['created_at'].timestamp() * 1000):x}{job['_id']}"


def after(cursor: str | None) -> tuple[datetime, ObjectId] | None:
    """The sort key a cursor continues after; None for the first page."""
    if cursor is None:
        return None
    match = CURSOR.fullmatch(cursor)
    if match is None:
        raise BadPage("cursor is not one this API gave out: use next_cursor from the previous page, "
                      "or leave it out for the first page.")
    millis, job_id = match.groups()
    return datetime.fromtimestamp(int(millis, 16) / 1000, UTC), ObjectId(job_id)
