"""What an upload may be: a video container, recognised by its bytes, never by its name."""

import re
import unicodedata
from pathlib import PurePosixPath, PureWindowsPath
from urllib.parse import quote

# One sniffing for the gateway's check and the converter's demuxer.
from common.formats import SNIFF_BYTES, video_type  # noqa: F401

MIB = 1024 * 1024
MAX_FILENAME_LENGTH = 200
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\"\\/]")


def clean_filename(name: str | None) -> str:
    """The base name of an uploaded file, safe to store, log and send back in a header."""
    name = unicodedata.normalize("NFC", name or "")
    name = PureWindowsPath(PurePosixPath(name).name).name
    name = _UNSAFE.sub("_", name).strip(" .")
    return name[:MAX_FILENAME_LENGTH] or "upload"


def download_name(name: str) -> dict[str, str]:
    """Content-Disposition parameters: an ASCII fallback, plus the exact name (RFC 6266) when it differs."""
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode() or "audio.mp3"
    if fallback == name:
        return {"filename": name}
    return {"filename": fallback, "filename*": "UTF-8''" + quote(name, safe="")}
