"""The video containers the product accepts: what the gateway lets in is exactly what the converter reads.

Both recognise a container by the file's first bytes (`filetype`), with this one function. The
gateway refuses a file that is none of them; the converter makes ffmpeg open the file with that
container's demuxer and no other. Bytes that merely look like one of them (a tracker module whose
title starts with the Matroska magic) then fail to open, instead of being decoded by whichever of
ffmpeg's hundreds of demuxers recognises them.
"""

from pathlib import Path

import filetype

# What `filetype` needs to see of a file.
SNIFF_BYTES = 8192

# MIME type, as `filetype` names it -> the ffmpeg demuxer that reads it.
DEMUXER_OF = {
    "video/mp4": "mov",
    "video/x-m4v": "mov",
    "video/quicktime": "mov",
    "video/3gpp": "mov",
    "video/x-matroska": "matroska",
    "video/webm": "matroska",
    "video/x-msvideo": "avi",
    "video/x-ms-wmv": "asf",
    "video/mpeg": "mpeg",
    "video/x-flv": "flv",
}


def video_type(head: bytes) -> str | None:
    """The MIME type of an accepted video container starting with these bytes, or None."""
    kind = filetype.guess(head)
    return kind.mime if kind is not None and kind.mime in DEMUXER_OF else None


def demuxer_of(path: Path) -> str | None:
    """The ffmpeg demuxer for the file, as the gateway recognised it; None for a file it would refuse."""
    with path.open("rb") as file:
        return demuxer_of_head(file.read(SNIFF_BYTES))


def demuxer_of_head(head: bytes) -> str | None:
    """The ffmpeg demuxer for a file starting with these (SNIFF_BYTES) bytes; None for one the gateway refuses."""
    mime = video_type(head)
    return DEMUXER_OF[mime] if mime else None
