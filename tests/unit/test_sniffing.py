"""Recognising a container from a file's first bytes: the gateway's check and the converter's choice of
demuxer and of pipe or temp file. Every byte of an upload is the user's, so no bytes may make either raise."""

import io
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from common import storage
from common.formats import SNIFF_BYTES, demuxer_of_head, video_type
from converter.streamable import is_streamable
from sample_media import box_claiming_two_to_the_64

FTYP = struct.pack(">I4s", 24, b"ftyp") + b"isom" + b"\x00\x00\x02\x00" + b"isomiso2"


def box(kind: bytes, size: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I4s", size, kind) + payload


def huge_box_mp4() -> bytes:
    return box_claiming_two_to_the_64()


def test_a_box_claiming_a_size_near_two_to_the_64_is_not_streamable_and_raises_nothing():
    video = io.BytesIO(huge_box_mp4())
    assert video_type(huge_box_mp4()[:SNIFF_BYTES]) == "video/mp4"

    assert is_streamable(video) is False
    assert video.tell() == 0


def test_a_box_that_points_past_the_end_is_not_streamable():
    video = io.BytesIO(FTYP + box(b"free", 1 << 30))
    assert is_streamable(video) is False


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=SNIFF_BYTES + 64))
def test_no_bytes_make_the_sniffing_raise(data):
    video_type(data)
    demuxer_of_head(data)
    video = io.BytesIO(data)
    assert is_streamable(video) in (True, False)
    assert video.tell() == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([b"ftyp", b"free", b"wide", b"moov", b"mdat", b"uuid", b"\x00\x00\x00\x00"]),
                          st.one_of(st.integers(0, 2**32 - 1), st.just(1)),
                          st.integers(0, 2**64 - 1)), max_size=20))
def test_no_chain_of_mp4_boxes_makes_the_sniffing_raise(boxes):
    data = FTYP + b"".join(box(kind, size, struct.pack(">Q", large) if size == 1 else b"")
                           for kind, size, large in boxes)
    video = io.BytesIO(data)
    assert is_streamable(video) in (True, False)
    assert video.tell() == 0
    demuxer_of_head(data[:SNIFF_BYTES])


def test_the_stored_crafted_mp4_read_as_the_converter_reads_it_is_not_streamable(memory_db):
    videos = storage.bucket(memory_db, storage.VIDEOS)
    video_fid = videos.upload_from_stream("crafted.mp4", io.BytesIO(huge_box_mp4()))
    with storage.rereadable(videos.open_download_stream(video_fid)) as video:
        assert is_streamable(video) is False
        assert video.read(len(FTYP)) == FTYP
