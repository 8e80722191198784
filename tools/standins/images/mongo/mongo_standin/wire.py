"""MongoDB's wire protocol, the two opcodes clients speak today: OP_MSG, and OP_QUERY for the first
`hello` of a handshake. Framing only; what the commands mean is commands.py's business."""

import socket
import struct

import bson
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

OP_REPLY = 1
OP_QUERY = 2004
OP_MSG = 2013
CHECKSUM_PRESENT = 1
MORE_TO_COME = 1 << 1
HEADER = struct.Struct("<iiii")
# Keys in the order they arrive: a command's name is its first key.
DECODE = CodecOptions(document_class=dict)


class Request:
    """One command from a client: the database it names, the command document, and how to answer."""

    def __init__(self, request_id: int, opcode: int, database: str, command: dict, wants_reply: bool = True):
        self.request_id = request_id
        self.opcode = opcode
        self.database = database
        self.command = command
        self.wants_reply = wants_reply

    @property
    def name(self) -> str:
        return next(iter(self.command))


def read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_request(sock: socket.socket) -> Request | None:
    """The next request on the connection, or None once the client has gone."""
    header = read_exactly(sock, HEADER.size)
    if header is None:
        return None
    length, request_id, _, opcode = HEADER.unpack(header)
    body = read_exactly(sock, length - HEADER.size)
    if body is None:
        return None
    if opcode == OP_MSG:
        return _op_msg(request_id, body)
    if opcode == OP_QUERY:
        return _op_query(request_id, body)
    raise ValueError(f"unsupported opcode {opcode}")


def _op_msg(request_id: int, body: bytes) -> Request:
    (flags,) = struct.unpack_from("<I", body)
    end = len(body) - (4 if flags & CHECKSUM_PRESENT else 0)
    position, command, sequences = 4, None, {}
    while position < end:
        kind = body[position]
        position += 1
        if kind == 0:
            (size,) = struct.unpack_from("<i", body, position)
            command = bson.decode(body[position : position + size], DECODE)
            position += size
        else:  # kind 1: a document sequence, e.g. the documents of an insert
            (size,) = struct.unpack_from("<i", body, position)
            section_end = position + size
            name_end = body.index(b"\0", position + 4)
            identifier = body[position + 4 : name_end].decode()
            sequences[identifier] = bson.decode_all(body[name_end + 1 : section_end], DECODE)
            position = section_end
    command.update(sequences)
    return Request(request_id, OP_MSG, command.get("$db", "admin"), command, not flags & MORE_TO_COME)


def _op_query(request_id: int, body: bytes) -> Request:
    name_end = body.index(b"\0", 4)
    collection = body[4:name_end].decode()
    position = name_end + 1 + 8  # numberToSkip, numberToReturn
    (size,) = struct.unpack_from("<i", body, position)
    query = bson.decode(body[position : position + size], DECODE)
    if "$query" in query:  # a command wrapped with read preference
        query = query["$query"]
    return Request(request_id, OP_QUERY, collection.split(".", 1)[0], query)


def encode_reply(request: Request, reply: dict, message_id: int) -> bytes:
    document = bson.encode(reply)
    if request.opcode == OP_QUERY:
        body = struct.pack("<iqii", 0, 0, 0, 1) + document
        opcode = OP_REPLY
    else:
        body = struct.pack("<IB", 0, 0) + document
        opcode = OP_MSG
    return HEADER.pack(HEADER.size + len(body), message_id, request.request_id, opcode) + body


def raw(document: dict) -> RawBSONDocument:
    """A document encoded once, so that a batch can be measured and sent without encoding it again."""
    return RawBSONDocument(bson.encode(document))
