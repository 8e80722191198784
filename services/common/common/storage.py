"""MongoDB: the database handle, and the GridFS buckets that hold videos and MP3s."""

import contextlib
import io
from collections.abc import Iterable
from datetime import UTC, datetime

import gridfs
from bson import Int64, ObjectId
from bson.errors import InvalidId
from gridfs import DEFAULT_CHUNK_SIZE
from gridfs.errors import NoFile
from pymongo import ASCENDING, MongoClient
from pymongo.database import Database
from pymongo.errors import ConfigurationError, PyMongoError

from common.settings import ConfigurationError as InvalidSetting
from common.telemetry import span

URI_SCHEMES = ("mongodb://", "mongodb+srv://")
VIDEOS = "videos"
MP3S = "mp3s"
# GridFS's default of 255 KiB makes a 1 GB video about 4,000 documents; 4 MiB pieces are 250, each
# one insert, one index entry and one round trip fewer (well under MongoDB's 16 MiB document limit).
CHUNK_BYTES = {VIDEOS: 4 * 1024 * 1024}
# An upload's chunks are written once this much of them is held: two video chunks. pymongo's own
# GridIn collects up to 48 MB first, which for uploads streamed in as they arrive is 48 MB of memory
# per upload in progress (ten of them would exceed the gateway's 512 MiB limit).
UPLOAD_BATCH_BYTES = 2 * CHUNK_BYTES[VIDEOS]


def connect(uri: str, database: str) -> Database:
    """A handle on the database; a URI that is not MongoDB's stops the service, naming MONGODB_URI
    (pymongo would take a bare word for a host name and time out on it later)."""
    try:
        if not uri.startswith(URI_SCHEMES):
            raise ConfigurationError(f"must begin with {' or '.join(URI_SCHEMES)}")
        client = MongoClient(uri, serverSelectionTimeoutMS=3000, connectTimeoutMS=3000, tz_aware=True)
    except ConfigurationError as error:
        raise InvalidSetting(f"Invalid configuration:\n  MONGODB_URI: {error}") from None
    return client[database]


class Bucket(gridfs.GridFSBucket):
    """A GridFS bucket whose uploads are written as they come, each a span of the current trace."""

    def __init__(self, db: Database, name: str):
        self.chunk_size = CHUNK_BYTES.get(name, DEFAULT_CHUNK_SIZE)
        super().__init__(db, name, chunk_size_bytes=self.chunk_size)
        self.name = name
        self._files_collection = db[f"{name}.files"]
        self._chunks_collection = db[f"{name}.chunks"]

    def upload_from_chunks(self, filename: str, pieces: Iterable[bytes], metadata: dict) -> ObjectId:
        """Store the pieces as one file, written UPLOAD_BATCH_BYTES at a time as they come, in GridFS's
        own layout (its specification's chunks and files documents, through the public collection API).
        The file exists once all of it is stored; when the pieces stop with an exception, whatever was
        already written is removed (pymongo's own upload_from_stream leaves those chunks behind)."""
        with span(f"GridFS upload {self.name}"):
            file_id, length, batch = ObjectId(), 0, []
            try:
                for number, chunk in enumerate(_whole_chunks(pieces, self.chunk_size)):
                    batch.append({"files_id": file_id, "n": number, "data": chunk})
                    length += len(chunk)
                    if len(batch) * self.chunk_size >= UPLOAD_BATCH_BYTES:
                        self._chunks_collection.insert_many(batch)
                        batch = []
                if batch:
                    self._chunks_collection.insert_many(batch)
                self._files_collection.insert_one({
                    "_id": file_id, "length": Int64(length), "chunkSize": self.chunk_size,
                    "uploadDate": datetime.now(UTC), "filename": filename, "metadata": metadata})
            except BaseException:
                with contextlib.suppress(PyMongoError):
                    self._chunks_collection.delete_many({"files_id": file_id})
                raise
            return file_id


def _whole_chunks(pieces: Iterable[bytes], size: int) -> Iterable[bytes]:
    """The same bytes in pieces of exactly `size` (the last one shorter): GridFS's chunks, whatever the
    sizes the pieces arrive in."""
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


def bucket(db: Database, name: str) -> Bucket:
    return Bucket(db, name)


def delete_file(files: gridfs.GridFSBucket, file_id) -> None:
    """Delete a stored file, its chunks included; one that is already gone (or None) is fine, as
    deletions are repeated after a crash and may race."""
    if file_id is not None:
        with contextlib.suppress(NoFile):
            files.delete(file_id)


def ensure_indexes(db: Database) -> None:
    """GridFS's indexes on both buckets (its specification's: a file's chunks are found by files_id and
    n, and pymongo's GridIn would make them on its first write), and the MP3s' job: the MP3s stored for a
    job are looked up by its id (leftovers of a failed attempt, deletion)."""
    for name in (VIDEOS, MP3S):
        db[f"{name}.files"].create_index([("filename", ASCENDING), ("uploadDate", ASCENDING)])
        db[f"{name}.chunks"].create_index([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)
    db[f"{MP3S}.files"].create_index("metadata.job_id")


def object_id(text) -> ObjectId | None:
    """The ObjectId that `text` spells, or None when it is malformed."""
    try:
        return ObjectId(text)
    except (InvalidId, TypeError):
        return None


def ping(db: Database) -> None:
    db.command("ping")
