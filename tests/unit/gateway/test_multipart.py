"""The file of a multipart body, read in storage-sized pieces: every byte, in order, wherever the
socket's reads and the pieces happen to split the body and its closing boundary."""

import io
import random

import pytest
from werkzeug.exceptions import ClientDisconnected

from gateway.multipart import FilePart, NotOneFile

BOUNDARY = "------------------------d74496d66958873e"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


class Socket(io.RawIOBase):
    """A body that arrives in pieces of random sizes, as a socket hands it over."""

    def __init__(self, data: bytes, seed: int):
        self._data, self._at, self._random = data, 0, random.Random(seed)

    def readable(self):
        return True

    def readinto(self, buffer):
        size = min(len(buffer), self._random.randint(1, 3000))
        piece = self._data[self._at:self._at + size]
        buffer[:len(piece)] = piece
        self._at += len(piece)
        return len(piece)


class ReadOnly:
    """A body with read() alone, as gunicorn's is (WSGI asks for no more)."""

    def __init__(self, raw: io.RawIOBase):
        self.read = raw.read


def body(data: bytes, tail: bytes = b"--\r\n") -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n"
            "Content-Type: video/mp4\r\n\r\n").encode() + data + f"\r\n--{BOUNDARY}".encode() + tail


def read(raw: bytes, size: int, seed: int, head: int = 100, read_only: bool = False) -> tuple[bytes, list[bytes]]:
    stream = Socket(raw, seed)
    part = FilePart(ReadOnly(stream) if read_only else stream, CONTENT_TYPE)
    assert part.filename == "a.mp4"
    return part.head(head), list(part.chunks(size))


@pytest.mark.parametrize("length", [0, 1, 99, 1000, 1001, 3999, 4000, 4001, 25_000])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("read_only", [False, True])
def test_every_byte_arrives_in_pieces_of_the_chunk_size(length, seed, read_only):
    # Data that looks like the start of the boundary, so that held-back bytes are tested too.
    data = bytes(random.Random(seed).choice(b"\r\n-d7ab") for _ in range(length))
    head, chunks = read(body(data), 1000, seed, read_only=read_only)
    assert head == data[:100]
    assert b"".join(chunks) == data
    assert all(len(chunk) == 1000 for chunk in chunks[:-1])
    assert all(chunks)


@pytest.mark.parametrize("seed", range(4))
def test_a_second_part_after_the_file_is_refused(seed):
    second = f"\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n--{BOUNDARY}--\r\n".encode()
    with pytest.raises(NotOneFile):
        read(body(b"x" * 5000, tail=second), 1000, seed)


@pytest.mark.parametrize("seed", range(4))
def test_a_body_that_ends_before_its_closing_boundary_is_the_client_breaking_off(seed):
    with pytest.raises(ClientDisconnected):
        read(body(b"x" * 5000)[:4000], 1000, seed)


@pytest.mark.parametrize("seed", range(8))
def test_the_boundary_inside_the_file_is_refused_or_kept_never_cut_short(seed):
    # RFC 2046: a sender picks a boundary its data never holds; one that does is malformed, and
    # whether it is seen as such depends on how the reads split the body: never stored cut short.
    data = b"x" * 2000 + f"\r\n--{BOUNDARY}xyz".encode() + b"y" * 2000
    try:
        _, chunks = read(body(data), 1000, seed)
    except NotOneFile:
        return
    assert b"".join(chunks) == data
