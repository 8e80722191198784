"""MONGODB_URI=memory: one in-process MongoDB (mongomock) shared by the whole process, for scripts/run-local,
its account commands, the tests and the benchmarks. The services never see the word: run-local builds
them with the database `connect` gives (their `build(settings, db=...)`).

mongomock is a development dependency only; the images have none.
"""

import threading
from types import SimpleNamespace

import mongomock
import mongomock.gridfs
from pymongo.database import Database

from common import storage
from runlocal import memory_indexes

MEMORY = "memory"

_lock = threading.Lock()
_shared = None


class _MemoryClient(mongomock.MongoClient):
    # pymongo's GridFSBucket reads its client's operation timeout (client.options.timeout), which
    # mongomock's client does not have: none, as a client made without timeoutMS has.
    options = SimpleNamespace(timeout=None)


def client() -> mongomock.MongoClient:
    """A new in-process MongoDB, with GridFS working on it and its unique indexes looked up rather than
    scanned (runlocal.memory_indexes)."""
    mongomock.gridfs.enable_gridfs_integration()
    memory_indexes.install()
    return _MemoryClient(tz_aware=True)


def connect(uri: str, database: str) -> Database:
    """The database `uri` names: with `memory`, the process's in-process MongoDB, else storage.connect's."""
    global _shared
    if uri != MEMORY:
        return storage.connect(uri, database)
    with _lock:
        if _shared is None:
            _shared = client()
        return _shared[database]


def fresh_database(name: str = "test") -> Database:
    """An empty in-process database of its own (one per unit test)."""
    return client()[name]
