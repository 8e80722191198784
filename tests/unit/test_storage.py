"""GridFS as the services use it (common.storage): whole uploads or nothing, in bounded memory."""

import pytest

from common import storage

MIB = 1024 * 1024


def test_an_upload_is_written_as_it_comes_not_collected_first(memory_db, monkeypatch):
    """pymongo's GridIn collects 48 MB of an upload before writing it; an upload in progress here may
    hold at most two video chunks of it (storage.UPLOAD_BATCH_BYTES)."""
    chunks = memory_db[f"{storage.VIDEOS}.chunks"]
    written = []
    insert_many = type(chunks).insert_many

    def spy(self, documents, *args, **kwargs):
        written.append(sum(len(document["data"]) for document in documents))
        return insert_many(self, documents, *args, **kwargs)

    monkeypatch.setattr(type(chunks), "insert_many", spy)
    pieces = (b"\x01" * (256 * 1024) for _ in range(4 * 60))  # 60 MiB in the decoder's 256 KiB pieces
    storage.bucket(memory_db, storage.VIDEOS).upload_from_chunks("clip.mp4", pieces, metadata={})

    assert sum(written) == 60 * MIB
    assert max(written) <= storage.UPLOAD_BATCH_BYTES
    assert len(written) >= 60 * MIB // storage.UPLOAD_BATCH_BYTES


@pytest.mark.parametrize("sizes", [[1], [5, 3], [storage.CHUNK_BYTES[storage.VIDEOS]], [3 * MIB] * 5, [7 * MIB, 1]])
def test_pieces_of_any_size_are_stored_byte_for_byte(memory_db, sizes):
    pieces = [bytes([n % 251]) * size for n, size in enumerate(sizes)]
    videos = storage.bucket(memory_db, storage.VIDEOS)
    fid = videos.upload_from_chunks("clip.mp4", iter(pieces), metadata={"owner": "a"})
    stored = videos.open_download_stream(fid)
    assert stored.read() == b"".join(pieces)
    assert stored.chunk_size == storage.CHUNK_BYTES[storage.VIDEOS]
