"""What the gateway's unit tests do again and again: calls as a client makes them, and what they check."""

import io

from werkzeug.http import parse_options_header

from common import storage
from common.jobs import Jobs
from tests.unit.gateway_double import ALICE_TOKEN

MIB = 1024 * 1024
JOB_FIELDS = {"job_id", "status", "progress", "mp3_fid", "error", "filename", "created_at", "updated_at"}
# A well-formed id that names nothing. Fixed, not ObjectId(): test ids must be the same in every process
# that collects them (pytest-xdist's workers).
UNKNOWN_ID = "65f0c0ffee0000000000beef"
MP3_BYTES = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 40  # not a real MP3: bytes are bytes


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def upload(client, data: bytes, name: str = "clip.mp4", token: str = ALICE_TOKEN):
    return client.post("/upload", data={"file": (io.BytesIO(data), name)}, headers=bearer(token),
                       content_type="multipart/form-data")


def raw_upload(client, disposition: bytes, data: bytes, token: str = ALICE_TOKEN):
    """A multipart upload whose part header is written by hand, as a hostile client may write it."""
    body = (b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"file\"; " + disposition + b"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--BOUNDARY--\r\n")
    return client.post("/upload", data=body, headers=bearer(token),
                       content_type="multipart/form-data; boundary=BOUNDARY")


def multipart_body(data: bytes, name: str = "clip.mp4", tail: bytes = b"\r\n--B--\r\n") -> bytes:
    """The body of an upload with boundary B, written by hand."""
    return (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + name.encode() + b"\"\r\n"
            b"Content-Type: video/mp4\r\n\r\n" + data + tail)


def assert_nothing_stored(db, publisher) -> None:
    assert db["videos.files"].count_documents({}) == 0
    assert db["videos.chunks"].count_documents({}) == 0
    assert db["jobs"].count_documents({}) == 0
    assert publisher.published == []


def job_list(body) -> list:
    return body if isinstance(body, list) else body["jobs"]


def finished_job(client, db, video: bytes, name: str = "clip.mp4", token: str = ALICE_TOKEN) -> tuple[str, str]:
    """Upload a video and finish its job with MP3_BYTES, as the converter would: (job_id, mp3_fid)."""
    response = upload(client, video, name, token)
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id = response.get_json()["job_id"]
    mp3_fid = storage.bucket(db, storage.MP3S).upload_from_stream("x.mp3", io.BytesIO(MP3_BYTES))
    assert Jobs(db).finish(job_id, mp3_fid)
    return job_id, str(mp3_fid)


def download_name(response) -> str:
    disposition, options = parse_options_header(response.headers["Content-Disposition"])
    assert disposition == "attachment"
    return options["filename"]
