"""Unique indexes for the in-process MongoDB (mongomock) that look a key up instead of scanning.

mongomock checks a unique index after every insert or update by filtering the whole collection, so
each GridFS chunk written costs as much as the chunks already stored (GridFS keeps a unique index on
`files_id, n`): a run-local gateway got slower with every upload, and one 457 MB upload alone
spent seconds in that scan. Here each unique index gets a dictionary from key to document id,
built from the collection once, the first time it is needed. Entries are never trusted blindly: a
key counts as taken only while its document is still stored and still carries that key, so deleted
and updated documents need no bookkeeping, and a rolled-back write leaves nothing wrong behind.

Indexes this does not handle (partial filters, values that cannot be hashed) keep mongomock's scan.

mongomock also checks that each document it stores can be encoded as BSON by encoding it, and throws
the result away: for a GridFS chunk that is a copy of 4 MiB, which was a third of a large upload's
time in run-local. Bytes are always valid BSON, so top-level bytes values are checked as empty ones;
everything else is checked as before.
"""

import threading

import mongomock.collection
from bson import BSON
from mongomock import DuplicateKeyError, helpers

_lock = threading.Lock()
_scanning_check = mongomock.collection.Collection._ensure_uniques


class _Unhashable(Exception):
    pass


def install() -> None:
    mongomock.collection.Collection._ensure_uniques = _ensure_uniques
    if mongomock.collection.BSON is not None:
        mongomock.collection.BSON = _BytesBlindBSON


class _BytesBlindBSON(BSON):
    """What mongomock's validation calls: BSON.encode, with top-level bytes values checked as empty."""

    @classmethod
    def encode(cls, document, *args, **kwargs):
        if isinstance(document, dict) and any(isinstance(value, bytes) for value in document.values()):
            document = {key: b"" if isinstance(value, bytes) else value for key, value in document.items()}
        return BSON.encode(document, *args, **kwargs)


def _document_id(document: dict):
    object_id = document["_id"]
    return helpers.hashdict(object_id) if isinstance(object_id, dict) else object_id


def _key(document: dict, fields: tuple[str, ...]) -> tuple:
    values = []
    for field in fields:
        try:
            value = helpers.get_value_by_dot(document, field)
        except KeyError:
            value = None
        if isinstance(value, dict):
            value = helpers.hashdict(value)
        try:
            hash(value)
        except TypeError:
            raise _Unhashable(field) from None
        values.append(value)
    return tuple(values)


def _ensure_uniques(self, new_data: dict) -> None:
    uniques = [(name, index) for name, index in self._store.indexes.items() if index.get("unique")]
    if not uniques:
        return
    if any(index.get("partialFilterExpression") is not None for _, index in uniques):
        return _scanning_check(self, new_data)
    try:
        with _lock:
            for name, index in uniques:
                _check_and_record(self._store, name, index, new_data)
    except _Unhashable:
        return _scanning_check(self, new_data)


def _check_and_record(store, name: str, index: dict, new_data: dict) -> None:
    fields = tuple(field for field, _ in index["key"])
    key = _key(new_data, fields)
    if index.get("sparse") and all(value is None for value in key):
        return
    new_id = _document_id(new_data)
    taken = _keys(store, name, index, fields, new_id)
    holder = taken.get(key)
    if holder is not None and holder != new_id and holder in store and _key(store[holder], fields) == key:
        raise DuplicateKeyError("E11000 Duplicate Key Error", 11000)
    taken[key] = new_id


def _keys(store, name: str, index: dict, fields: tuple[str, ...], new_id) -> dict:
    """The index's key -> document id, built once per index (a re-created index is built anew) from
    the documents stored before the one being checked."""
    cache = store.__dict__.setdefault("_unique_keys", {})
    built = cache.get(name)
    if built is None or built[0] is not index:
        keys = {}
        for document in list(store.documents):
            document_id = _document_id(document)
            if document_id == new_id:
                continue
            key = _key(document, fields)
            if not (index.get("sparse") and all(value is None for value in key)):
                keys[key] = document_id
        built = cache[name] = (index, keys)
    return built[1]
