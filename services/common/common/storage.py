"""MongoDB: the database handle, and the GridFS buckets that hold videos and MP3s."""

import contextlib
import io
import threading
from collections.abc import Iterable

import gridfs
import gridfs.synchronous.grid_file as grid_file
from bson import ObjectId
from bson.errors import InvalidId
from gridfs.errors import NoFile
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import PyMongoError

from common.telemetry import instrument_libraries, span

VIDEOS = "videos"
MP3S = "mp3s"
MEMORY = "memory"
# GridFS's default of 255 KiB makes a 1 GB video about 4,000 documents; 4 MiB pieces are 250, each
# one insert, one index entry and one round trip fewer (well under MongoDB's 16 MiB document limit).
CHUNK_BYTES = {VIDEOS: 4 * 1024 * 1024}
# pymongo collects up to 48 MB of chunks of an upload before it writes them (one insert_many): with
# uploads streamed in as they arrive, that is 48 MB of memory per upload in progress, and ten of them
# exceed the gateway's 512 MiB limit. Writing every two video chunks bounds it; a server takes 8 MiB
# in one message as easily. (A private constant of the pinned pymongo: test_storage checks it works.)
UPLOAD_BUFFER_BYTES = 2 * CHUNK_BYTES[VIDEOS]
grid_file._UPLOAD_BUFFER_SIZE = UPLOAD_BUFFER_BYTES

_memory_lock = threading.Lock()
_memory_client = None


def connect(uri: str, database: str) -> Database:
    """A handle on the database; `memory` is one in-process MongoDB shared by the whole process."""
    if uri == MEMORY:
        return _memory_mongo()[database]
    instrument_libraries()  # before the client: its commands become spans
    return MongoClient(uri, serverSelectionTimeoutMS=3000, connectTimeoutMS=3000, tz_aware=True)[database]


def _memory_mongo():
    global _memory_client
    with _memory_lock:
        if _memory_client is None:
            try:
                import mongomock
                import mongomock.gridfs
            except ImportError:
                raise SystemExit(
                    "MONGODB_URI=memory needs mongomock, which only the development .venv has; "
                    "point MONGODB_URI at a MongoDB server."
                ) from None
            mongomock.gridfs.enable_gridfs_integration()
            from common import memory_indexes

            memory_indexes.install()
            _memory_client = mongomock.MongoClient(tz_aware=True)
        return _memory_client


class Bucket(gridfs.GridFSBucket):
    """A GridFS bucket whose uploads are spans of the current trace."""

    def __init__(self, db: Database, name: str):
        self.chunk_size = CHUNK_BYTES.get(name, gridfs.DEFAULT_CHUNK_SIZE)
        super().__init__(db, name, chunk_size_bytes=self.chunk_size)
        self.name = name

    def upload_from_stream(self, filename, source, *args, **kwargs):
        with span(f"GridFS upload {self.name}"):
            return super().upload_from_stream(filename, source, *args, **kwargs)

    def upload_from_chunks(self, filename: str, chunks: Iterable[bytes], metadata: dict):
        """Store the pieces as one file, as they come; pieces of exactly `chunk_size` are stored as they
        are, without a copy. When they stop with an exception, whatever was already written is removed
        (pymongo's own upload_from_stream leaves those chunks behind)."""
        with span(f"GridFS upload {self.name}"):
            stored = self.open_upload_stream(filename, metadata=metadata)
            try:
                for piece in _whole_chunks(chunks, stored.chunk_size):
                    stored.write(piece)
                stored.close()
            except BaseException:
                with contextlib.suppress(PyMongoError):
                    stored.abort()
                raise
            return stored._id


def _whole_chunks(pieces: Iterable[bytes], size: int) -> Iterable[bytes]:
    """The same bytes in pieces of exactly `size` (the last one shorter). GridIn stores a piece of its
    chunk size as it is; smaller ones it first collects in a buffer it grows and copies each time."""
    pending, held = [], 0
    for piece in pieces:
        pending.append(piece)
        held += len(piece)
        if held >= size:
            joined = b"".join(pending)
            whole = held - held % size
            for start in range(0, whole, size):
                yield joined[start:start + size]  # the whole of `joined` is no copy
            pending, held = ([joined[whole:]] if held > whole else []), held - whole
    if held:
        yield b"".join(pending)


class _Download(io.RawIOBase):
    """A GridFS download as a raw stream, for io.BufferedReader."""

    def __init__(self, download):
        self._download = download

    def readinto(self, buffer) -> int:
        data = self._download.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, position: int, whence: int = io.SEEK_SET) -> int:
        return self._download.seek(position, whence)

    def tell(self) -> int:
        return self._download.tell()

    def close(self) -> None:
        self._download.close()
        super().close()


def rereadable(download, head_bytes: int = 64 * 1024) -> io.BufferedReader:
    """The download, with its first `head_bytes` kept: looking at a file's head and going back to its
    start costs no second fetch (a GridFS download drops its chunk at every seek, and a video chunk is
    4 MiB)."""
    return io.BufferedReader(_Download(download), buffer_size=head_bytes)


def bucket(db: Database, name: str) -> gridfs.GridFSBucket:
    files = Bucket(db, name)
    if type(db.client).__module__.startswith("mongomock"):
        # mongomock's collections confuse pymongo's client-side timeout lookup.
        files._timeout = None
    return files


def delete_file(files: gridfs.GridFSBucket, file_id) -> None:
    """Delete a stored file, its chunks included; one that is already gone (or None) is fine, as
    deletions are repeated after a crash and may race."""
    if file_id is not None:
        with contextlib.suppress(NoFile):
            files.delete(file_id)


def ensure_indexes(db: Database) -> None:
    """The MP3s stored for a job are looked up by its id (leftovers of a failed attempt, deletion)."""
    db[f"{MP3S}.files"].create_index("metadata.job_id")


def object_id(text) -> ObjectId | None:
    """The ObjectId that `text` spells, or None when it is malformed."""
    try:
        return ObjectId(text)
    except (InvalidId, TypeError):
        return None


def ping(db: Database) -> None:
    db.command("ping")
