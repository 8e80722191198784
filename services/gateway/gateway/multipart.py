"""The one file of a multipart/form-data request, read as the body arrives: never spooled to disk.

werkzeug's form parser (request.files) copies each file into a temporary file before the route
sees a byte of it, so every upload in progress costs its whole size in the temp directory, and the
file is then read a second time to store it. Here werkzeug's own incremental decoder reads the
body's structure (preamble, the part's headers, what follows the file) and the file's bytes are read
straight into the buffer of the next storage chunk, so that they are copied once on their way from
the socket to storage: werkzeug's decoder would copy each piece four times, and that, not the
socket, was most of the upload's CPU.

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
# The decoder's read size, for the part's headers and the file's first bytes (which are checked
# before the rest is read): each read is copied a few times on its way through the decoder, and
# pieces this small stay in the CPU's cache.
READ_BYTES = 64 * 1024
# The most read into a chunk's buffer at a time: a socket hands over less anyway, but gunicorn's request
# body has no readinto, so werkzeug reads that much into bytes of its own and copies them over, and
# gunicorn collects them first: a whole chunk's worth would be two more chunks of memory per upload.
READ_INTO_BYTES = 256 * 1024
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
    """The file of a multipart body: its name, its first bytes (`head()`), then all its bytes in
    pieces of a given size (`chunks()`), then the body's end checked."""

    def __init__(self, stream: IO[bytes], content_type: str | None):
        self._stream = stream
        self._boundary = boundary(content_type)
        # RFC 2046: the file ends where a line break and the boundary follow, which its bytes never hold.
        self._delimiter = b"\r\n--" + self._boundary
        self._decoder = MultipartDecoder(self._boundary, max_form_memory_size=MAX_BUFFER)
        self._events = self._decode()
        first = self._next()
        if not isinstance(first, File) or first.name != FIELD:
            raise NotOneFile("the first part is not a file in the field 'file'")
        self.filename = first.filename
        start = self._next()  # what the decoder already holds of the file, as one event
        if not isinstance(start, Data):
            raise NotOneFile("malformed part")
        # From here the file's bytes are read without the decoder (the bytes it keeps back in case they
        # start the boundary included), unless it has already seen the file's end.
        self._pending = bytearray(start.data)
        self._read_to_end = not start.more_data
        if not self._read_to_end:
            self._pending += self._decoder.buffer
            del self._decoder.buffer[:]

    def head(self, size: int) -> bytes:
        """The file's first `size` bytes (fewer when it is shorter), read in small pieces: what is
        checked before the rest of the body is read. They stay the start of `chunks()`."""
        while (not self._read_to_end and self._delimiter not in self._pending
               and len(self._pending) < size + len(self._delimiter)):
            data = self._stream.read(READ_BYTES)
            if not data:
                raise ClientDisconnected("the body ended before its closing boundary")
            self._pending += data
        return bytes(self._pending[:min(size, self._end_of_file(self._pending))])

    def chunks(self, size: int) -> Iterator[bytes]:
        """The file's bytes in pieces of exactly `size` (the last one shorter, none for an empty file),
        each read into one buffer and copied out once; ends once the rest of the body is read and
        found empty of other parts."""
        if self._read_to_end:
            for start in range(0, len(self._pending), size):
                yield bytes(self._pending[start:start + size])
        else:
            yield from self._read_chunks(size)
        if not isinstance(self._next(), Epilogue):
            raise NotOneFile("another part follows the file")

    def _read_chunks(self, size: int) -> Iterator[bytes]:
        keep = len(self._delimiter) - 1  # what may be the start of the delimiter, split between reads
        buffer = bytearray(max(size + len(self._delimiter), len(self._pending)))
        view = memoryview(buffer)
        filled = len(self._pending)
        view[:filled] = self._pending
        self._pending = bytearray()
        searched = 0
        while (end := buffer.find(self._delimiter, searched, filled)) < 0:
            searched = max(0, filled - keep)
            if filled >= size + keep:
                yield bytes(view[:size])
                view[:filled - size] = view[size:filled]
                filled, searched = filled - size, max(0, searched - size)
                continue
            read = self._read_into(view[filled:filled + READ_INTO_BYTES])
            if not read:
                raise ClientDisconnected("the body ended before its closing boundary")
            filled += read
        for start in range(0, end, size):
            yield bytes(view[start:min(end, start + size)])
        # The boundary and what follows it, to the decoder: with its ending ("--" or a line break),
        # which it needs to tell the boundary from data that only looks like its start.
        tail = bytes(view[end:filled])
        while len(tail) < len(self._delimiter) + 4 and (more := self._stream.read(READ_BYTES)):
            tail += more
        self._decoder.receive_data(tail)
        event = self._next()
        if not isinstance(event, Data) or event.data or event.more_data:
            raise NotOneFile("malformed part")

    def _end_of_file(self, data: bytearray) -> int:
        end = data.find(self._delimiter)
        return len(data) if end < 0 else end

    def _read_into(self, view: memoryview) -> int:
        readinto = getattr(self._stream, "readinto", None)
        if readinto is not None:
            return readinto(view) or 0
        data = self._stream.read(len(view))
        view[:len(data)] = data
        return len(data)

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
