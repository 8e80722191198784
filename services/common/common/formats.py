"""The video containers the product accepts: what the gateway lets in is exactly what the converter reads.

The gateway recognises a container by its first bytes (`filetype`); the converter lets ffmpeg open a
file only with the demuxer of one of these containers. Bytes that merely look like one of them (a
tracker module whose title starts with the Matroska magic) are then refused by ffmpeg, instead of
being decoded by whichever of its hundreds of demuxers recognises them.
"""

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

ACCEPTED_TYPES = frozenset(DEMUXER_OF)
DEMUXERS = tuple(sorted(set(DEMUXER_OF.values())))
