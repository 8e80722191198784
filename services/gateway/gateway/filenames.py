"""What an upload is called: a safe name to store it under, and to send it back as."""

import re
import unicodedata
from pathlib import PurePosixPath, PureWindowsPath
from urllib.parse import quote

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
