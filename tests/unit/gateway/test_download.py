"""GET /download: the caller's MP3, named after the upload, safe for any name."""

import io
from urllib.parse import unquote

import pytest
from werkzeug.http import parse_options_header

from common import storage
from common.jobs import Jobs
from tests.unit.envfile import assert_json_error
from tests.unit.gateway.calls import (
    MP3_BYTES,
    UNKNOWN_ID,
    bearer,
    download_name,
    finished_job,
    raw_upload,
    upload,
)
from tests.unit.gateway_double import (
    ALICE_TOKEN,
    BOB_TOKEN,
)

# ---------------------------------------------------------------- GET /download


def test_download_streams_the_mp3_named_after_the_upload(client, memory_db, video):
    _job_id, mp3_fid = finished_job(client, memory_db, video, "clip.mp4")
    response = client.get(f"/download?fid={mp3_fid}", headers=bearer(ALICE_TOKEN))
    assert response.status_code == 200
    assert response.mimetype == "audio/mpeg"
    assert response.get_data() == MP3_BYTES
    assert download_name(response) == "clip.mp3"


@pytest.mark.parametrize("query", ["", "?fid=", "?fid=%20", "?other=1"])
def test_download_without_a_fid_is_400(client, query):
    assert_json_error(client.get(f"/download{query}", headers=bearer(ALICE_TOKEN)), 400)


@pytest.mark.parametrize("fid", ["nope", "../x", "..%2F..%2Fetc%2Fpasswd", UNKNOWN_ID, "0" * 24, "{}"])
def test_download_of_a_malformed_or_unknown_fid_is_404(client, memory_db, video, fid):
    finished_job(client, memory_db, video)  # something to find, were the lookup sloppy
    assert_json_error(client.get(f"/download?fid={fid}", headers=bearer(ALICE_TOKEN)), 404)


def test_download_of_another_users_mp3_is_404(client, memory_db, video):
    _job_id, mp3_fid = finished_job(client, memory_db, video, token=BOB_TOKEN)
    assert_json_error(client.get(f"/download?fid={mp3_fid}", headers=bearer(ALICE_TOKEN)), 404)
    assert client.get(f"/download?fid={mp3_fid}", headers=bearer(BOB_TOKEN)).status_code == 200


def test_download_of_a_video_fid_is_404(client, video):
    video_fid = upload(client, video).get_json()["video_fid"]
    assert_json_error(client.get(f"/download?fid={video_fid}", headers=bearer(ALICE_TOKEN)), 404)


HOSTILE_NAMES = {
    "crlf-header-injection": b"filename*=UTF-8''evil%0D%0ASet-Cookie%3A%20session%3Dstolen%0D%0A.mp4",
    "bare-lf": b"filename*=UTF-8''a%0Ab.mp4",
    "quotes": b'filename="say \\"hi\\"; filename=x.exe.mp4"',
    "posix-traversal": b'filename="../../etc/passwd.mp4"',
    "windows-traversal": b'filename="..\\\\..\\\\windows\\\\win.ini.mp4"',
    "absolute-path": b'filename="/etc/cron.d/job.mp4"',
    "non-ascii": 'filename="vidéo 東京 видео.mp4"'.encode(),
    "nul-and-controls": b"filename*=UTF-8''a%00b%1Bc%7F.mp4",
    "only-dots": b'filename="...."',
}


@pytest.mark.parametrize("kind", HOSTILE_NAMES)
def test_download_is_safe_for_hostile_upload_names(client, memory_db, video, kind):
    response = raw_upload(client, HOSTILE_NAMES[kind], video)
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id = response.get_json()["job_id"]
    mp3_fid = storage.bucket(memory_db, storage.MP3S).upload_from_stream("x.mp3", io.BytesIO(MP3_BYTES))
    Jobs(memory_db).finish(job_id, mp3_fid)

    shown = client.get(f"/jobs/{job_id}", headers=bearer(ALICE_TOKEN)).get_json()["filename"]
    assert shown and not any(c in shown for c in "/\\\r\n\x00")

    response = client.get(f"/download?fid={mp3_fid}", headers=bearer(ALICE_TOKEN))
    assert response.status_code == 200
    assert response.get_data() == MP3_BYTES
    assert "Set-Cookie" not in response.headers
    for name, value in response.headers.items():
        assert "\r" not in value and "\n" not in value, (name, value)
    name = download_name(response)
    assert name.endswith(".mp3")
    assert not any(c in name for c in "/\\\r\n\x00"), name


def test_a_non_ascii_download_name_is_sent_in_the_rfc_5987_form(client, memory_db, video):
    _job_id, mp3_fid = finished_job(client, memory_db, video, "видео.mp4")
    response = client.get(f"/download?fid={mp3_fid}", headers=bearer(ALICE_TOKEN))
    assert response.status_code == 200
    header = response.headers["Content-Disposition"]
    header.encode("latin-1")  # PEP 3333: a header value a WSGI server can send
    options = parse_options_header(header.replace("filename*=", "filename_ext="))[1]
    assert options.get("filename_ext", "").lower().startswith("utf-8''")
    assert unquote(options["filename_ext"].split("''", 1)[1]) == "видео.mp3"
