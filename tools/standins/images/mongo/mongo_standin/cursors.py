"""Server-side cursors: the first batch of a find or aggregate, the rest through getMore."""

import itertools
from collections.abc import Iterator

from bson.int64 import Int64

from mongo_standin.wire import raw

DEFAULT_FIRST_BATCH = 101
# Well under the 48 MB message limit, as mongod keeps a batch under 16 MiB.
MAX_BATCH_BYTES = 16 * 1024 * 1024 - 64 * 1024


class Cursors:
    def __init__(self):
        self._open: dict[int, tuple[str, Iterator]] = {}
        self._ids = itertools.count(1)

    def first_batch(self, namespace: str, documents: Iterator, batch_size: int | None, single: bool) -> dict:
        batch_size = DEFAULT_FIRST_BATCH if batch_size is None else batch_size
        documents = iter(documents)
        batch, exhausted = self._take(documents, batch_size or None)
        cursor_id = 0
        if not exhausted and not single:
            cursor_id = next(self._ids)
            self._open[cursor_id] = (namespace, documents)
        return {"cursor": {"firstBatch": batch, "id": Int64(cursor_id), "ns": namespace}, "ok": 1.0}

    def get_more(self, cursor_id: int, batch_size: int | None) -> dict:
        if cursor_id not in self._open:
            return {"ok": 0.0, "errmsg": f"cursor id {cursor_id} not found", "code": 43, "codeName": "CursorNotFound"}
        namespace, documents = self._open[cursor_id]
        batch, exhausted = self._take(documents, batch_size)
        if exhausted:
            del self._open[cursor_id]
            cursor_id = 0
        return {"cursor": {"nextBatch": batch, "id": Int64(cursor_id), "ns": namespace}, "ok": 1.0}

    def kill(self, cursor_ids: list) -> dict:
        killed = [Int64(i) for i in cursor_ids if self._open.pop(int(i), None) is not None]
        missing = [Int64(i) for i in cursor_ids if int(i) not in killed]
        return {"cursorsKilled": killed, "cursorsNotFound": missing, "cursorsAlive": [], "cursorsUnknown": [],
                "ok": 1.0}

    @staticmethod
    def _take(documents: Iterator, limit: int | None) -> tuple[list, bool]:
        """Up to `limit` documents (no limit: as many as fit), never more bytes than one batch may hold."""
        batch, size = [], 0
        while limit is None or len(batch) < limit:
            document = next(documents, None)
            if document is None:
                return batch, True
            encoded = raw(document)
            batch.append(encoded)
            size += len(encoded.raw)
            if size >= MAX_BATCH_BYTES:
                break
        # Exhausted only if nothing is left: peeking would lose a document, so the next getMore tells.
        return batch, False
