"""The one file of a multipart/form-data request, read as the body arrives: never spooled to disk.

werkzeug's form parser (request.files) copies each file into a temporary file before the route
sees a byte of it, so every upload in progress costs its whole size in the temp directory, and the
file is then read a second time to store it. Here werkzeug's own incremental decoder hands the
file's bytes over as they come, so the route can check and store them on the way.

The body must hold exactly one part, a file in the field `file`; anything else is NotOneFile, also
when the extra part comes after the file (the caller then drops what it stored). A body that ends
before its closing boundary is the client breaking off: werkzeug's ClientDisconnected.
"""

from collections.abc import Iterator
from typing import IO

from werkzeug.exceptions import ClientDisconnected
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData, Preamble, State

FIELD = "file"
# werkzeug's own read size: each read is copied a few times on its way through the decoder, and pieces
# this small stay in the CPU's cache (decoding 466 MB took 0.12-0.14 s in 64 KiB reads, 0.22-0.41 s in
# 256 KiB ones, 1.2 s in 4 MiB ones).
READ_BYTES = 64 * 1024
# What the decoder may hold unparsed: one read plus what it keeps back in case a boundary straddles
# two reads. It also bounds a part's headers, which must fit in it.
MAX_BUFFER = 2 * READ_BYTES


class NotOneFile(Exception):
    """The body is not one file in the field `file` (no file, another field, several, or malformed)."""


def boundary(content_type: str | None) -> bytes:
    mime, options = parse_options_header(content_type or "")
    if mime != "multipart/form-data" or not options.get("boundary"):
        raise NotOneFile("not multipart/form-data")
    return options["boundary"].encode("latin-1")


class FilePart:
    """The file of a multipart body: its name, then its bytes (`chunks()`), then the body's end checked."""

    def __init__(self, stream: IO[bytes], content_type: str | None):
        self._stream = stream
        self._decoder = MultipartDecoder(boundary(content_type), max_form_memory_size=MAX_BUFFER)
        self._events = self._decode()
        first = self._next()
        if not isinstance(first, File) or first.name != FIELD:
            raise NotOneFile("the first part is not a file in the field 'file'")
        self.filename = first.filename

    def chunks(self) -> Iterator[bytes]:
        """The file's bytes as they arrive; ends once the rest of the body is read and found empty."""
        while True:
            event = self._next()
            if not isinstance(event, Data):
                raise NotOneFile("malformed part")
            if event.data:
                yield event.data
            if not event.more_data:
                break
        if not isinstance(self._next(), Epilogue):
            raise NotOneFile("another part follows the file")

    def _next(self):
        try:
            return next(self._events)
        except ValueError as error:  # the decoder's word for a malformed body
            raise NotOneFile(str(error)) from None

    def _decode(self) -> Iterator[File | Field | Data | Epilogue]:
        while True:
            event = self._decoder.next_event()
            if isinstance(event, Preamble):
                continue
            if not isinstance(event, NeedData):
                yield event
                if isinstance(event, Epilogue):
                    return
                continue
            data = self._stream.read(READ_BYTES)
            if not data and self._decoder.state not in (State.PREAMBLE, State.EPILOGUE):
                raise ClientDisconnected("the body ended before its closing boundary")
            self._decoder.receive_data(data or None)  # None: the body is complete
