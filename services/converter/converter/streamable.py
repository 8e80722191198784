"""Whether ffmpeg can read a video front to back, from a pipe, with nothing missing.

ffmpeg reading an MP4 whose index (the `moov` box) comes after the media (`mdat`) from a pipe
cannot seek back to the index: it exits 0 having written an empty or short MP3. So only two kinds
are streamed: Matroska/WebM (the header comes first, seeking is optional) and MP4/MOV whose `moov`
comes before any `mdat` ("faststart"). Everything else goes through a seekable temp file.
"""

import struct
from typing import BinaryIO

MATROSKA_MAGIC = b"\x1a\x45\xdf\xa3"
# Top-level boxes to look through before giving up: ftyp, free, wide, uuid, ... come before moov.
MAX_BOXES = 16


def is_streamable(video: BinaryIO) -> bool:
    """Reads the box headers of a seekable file (a GridFS download) and leaves it at its start."""
    try:
        head = video.read(len(MATROSKA_MAGIC))
        if head == MATROSKA_MAGIC:
            return True
        return _moov_first(video)
    finally:
        video.seek(0)


def _moov_first(video: BinaryIO) -> bool:
    position = 0
    for _ in range(MAX_BOXES):
        video.seek(position)
        header = video.read(8)
        if len(header) < 8:
            return False
        size, kind = struct.unpack(">I4s", header)
        if kind == b"moov":
            return True
        if kind == b"mdat":
            return False
        if size == 1:  # the size is the 64-bit field that follows
            large = video.read(8)
            if len(large) < 8:
                return False
            size = struct.unpack(">Q", large)[0]
        if size < 8:  # 0 means "to the end of the file": no moov before it
            return False
        position += size
    return False
