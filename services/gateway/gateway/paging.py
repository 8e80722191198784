"""Pages of GET /jobs: the `limit` a caller may ask for, and the opaque cursor that continues a walk.

A cursor names the last job of a page by its sort key (created_at to the millisecond, as MongoDB
keeps it, and _id), so the next page starts right after it however many jobs are created meanwhile.
"""

import base64
import binascii
from datetime import UTC, datetime

from bson import ObjectId

from common.storage import object_id

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


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
    millis = int(job["created_at"].timestamp() * 1000)
    key = f"{millis}.{job['_id']}".encode()
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def after(cursor: str | None) -> tuple[datetime, ObjectId] | None:
    """The sort key a cursor continues after; None for the first page."""
    if cursor is None:
        return None
    try:
        key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        millis, _, job_id = key.partition(".")
        created_at = datetime.fromtimestamp(int(millis) / 1000, UTC)
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError, OSError):
        created_at = job_id = None
    oid = object_id(job_id)
    if created_at is None or oid is None or not cursor.isascii():
        raise BadPage("cursor is not one this API gave out: use next_cursor from the previous page, "
                      "or leave it out for the first page.")
    return created_at, oid
