"""Hostile input against the running stack: forged tokens, SQL injection, hostile file names,
oversize uploads, a file that only looks like a video, and a fuzz pass over every endpoint.
Everything is refused or fails with a reason; nothing is stored; no request gets a 5xx."""

import base64
import json
import time
import uuid

import jwt
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import storage
from runlocal import mongo
from runlocal.throwaway import running_stack
from sample_media import module_posing_as_matroska
from tests.servers import ADMIN, Client, stack_environment


@pytest.fixture(scope="module")
def env(servers, tmp_path_factory):
    return stack_environment(servers, tmp_path_factory, "atk", MAX_UPLOAD_MB="2")


@pytest.fixture(scope="module")
def stack(env):
    with running_stack(env) as running:
        yield running


@pytest.fixture(scope="module")
def admin(stack):
    client = Client(stack.gateway_url)
    assert client.login(*ADMIN).status_code == 200
    return client


def stored_counts(env) -> tuple[int, int]:
    db = mongo.connect(env["MONGODB_URI"], env["MONGODB_DB"])
    return db[f"{storage.VIDEOS}.files"].count_documents({}), db["jobs"].count_documents({})


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def forged_tokens(env, valid: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": ADMIN[0], "admin": True, "iat": now, "exp": now + 3600}
    header, _payload, signature = valid.split(".")
    issued = jwt.decode(valid, options={"verify_signature": False})

    def signed(change: dict) -> dict:
        return {k: v for k, v in {**issued, **change}.items() if v is not None}

    return {
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}.",
        "wrong key": jwt.encode(claims, "not-the-secret-but-long-enough-1234", algorithm="HS256"),
        "tampered payload": f"{header}.{b64({**claims, 'sub': 'mallory@example.com'})}.{signature}",
        "expired": jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, env["JWT_SECRET"], algorithm="HS256"),
        # Signed with the real secret, but not as auth issues tokens: each claim is checked.
        **{f"signed, {name}": jwt.encode(signed(change), env["JWT_SECRET"], algorithm="HS256")
           for name, change in {"without iss, aud, jti, uid, ver": dict.fromkeys(("iss", "aud", "jti", "uid", "ver")),
                                "another issuer": {"iss": "someone-else"},
                                "another audience": {"aud": "another-service"},
                                "without jti": {"jti": None},
                                "another account's id": {"uid": issued["uid"] + 1000},
                                "a newer token version": {"ver": issued["ver"] + 1}}.items()},
        "garbage": "not.a.token",
        "empty": "",
    }


def test_forged_tokens_get_401_and_store_nothing(env, stack, admin, samples):
    # The real claims, signed again with the real secret, are accepted: what is refused below is refused
    # for the claim that was changed.
    issued = jwt.decode(admin.token, options={"verify_signature": False})
    resigned = Client(stack.gateway_url, token=jwt.encode(issued, env["JWT_SECRET"], algorithm="HS256"))
    assert resigned.jobs().status_code == 200
    before = stored_counts(env)
    for name, token in forged_tokens(env, admin.token).items():
        forged = Client(stack.gateway_url, token=token)
        assert forged.upload(samples["faststart.mp4"]).status_code == 401, name
        assert forged.jobs().status_code == 401, name
    assert stored_counts(env) == before


@pytest.mark.parametrize("email", ["' OR '1'='1", "admin@example.com'--", "admin@example.com' #",
                                   "\"; DROP TABLE users; --", "admin@example.com\x00"])
def test_sql_injection_in_login_is_just_a_wrong_password(stack, email):
    response = Client(stack.gateway_url).login(email, "' OR '1'='1")
    assert response.status_code == 401
    assert Client(stack.gateway_url).login(*ADMIN).status_code == 200  # the table is intact


def raw_upload(stack, token: str, filename: bytes, data: bytes) -> requests.Response:
    """A multipart body built by hand, so that the file name reaches the server byte for byte."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\n".encode()
            + b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
            + b"Content-Type: video/mp4\r\n\r\n" + data + f"\r\n--{boundary}--\r\n".encode())
    return requests.post(f"{stack.gateway_url}/upload", data=body, timeout=60,
                         headers={"Authorization": f"Bearer {token}",
                                  "Content-Type": f"multipart/form-data; boundary={boundary}"})


@pytest.mark.parametrize("filename", [
    b"../../../etc/passwd.mp4",
    b"..\\..\\windows\\system.ini.mp4",
    b'clip"; filename=evil.exe; x=".mp4',
    "émission — épisode 1.mp4".encode(),
])
def test_hostile_file_names_stay_harmless_through_to_the_download(stack, admin, samples, filename):
    upload = raw_upload(stack, admin.token, filename, samples["faststart.mp4"].read_bytes())
    assert upload.status_code == 202, upload.text
    job = admin.wait_final(upload.json()["job_id"])
    assert job["status"] == "done"
    assert "/" not in job["filename"] and "\\" not in job["filename"] and "\n" not in job["filename"]

    download = admin.download(job["mp3_fid"])

    assert download.status_code == 200
    disposition = download.headers["Content-Disposition"]
    assert "\r" not in disposition and "\n" not in disposition
    assert "Set-Cookie" not in download.headers
    assert disposition.startswith("attachment; filename=")
    assert "/" not in disposition.split("filename=", 1)[1].split(";")[0]


def test_a_tracker_module_posing_as_matroska_fails_with_a_reason_instead_of_converting_for_half_an_hour(
        env, stack, admin, tmp_path):
    """The review's file: the gateway's sniffing takes it for Matroska (202), and ffmpeg would decode
    its 88 hours. Opened as the Matroska it claims to be, it fails at once and leaves nothing stored."""
    upload = admin.upload(module_posing_as_matroska(tmp_path / "song.mkv"))
    assert upload.status_code == 202, upload.text

    job = admin.wait_final(upload.json()["job_id"], timeout=30)

    assert job["status"] == "failed"
    assert job["error"] == "The file is corrupt or truncated: ffmpeg cannot read it as a video."
    assert job["mp3_fid"] is None
    db = mongo.connect(env["MONGODB_URI"], env["MONGODB_DB"])
    assert db[f"{storage.VIDEOS}.files"].count_documents({"_id": storage.object_id(upload.json()["video_fid"])}) == 0


def test_a_file_name_that_breaks_the_part_headers_is_refused_and_stores_nothing(env, stack, admin, samples):
    before = stored_counts(env)
    upload = raw_upload(stack, admin.token, b"clip\r\nSet-Cookie: session=stolen.mp4",
                        samples["faststart.mp4"].read_bytes())
    assert upload.status_code == 400
    assert upload.json()["error"] == "one_file_expected"
    assert "Set-Cookie" not in upload.headers
    assert stored_counts(env) == before


def test_an_oversize_upload_is_413_and_stores_nothing(env, admin, tmp_path):
    before = stored_counts(env)
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0\0\0\x18ftypmp42" + b"\0" * (3 * 1024 * 1024))
    response = admin.upload(big)
    assert response.status_code == 413
    assert stored_counts(env) == before


PATHS = ["/login", "/upload", "/jobs", "/jobs/{id}", "/download", "/healthz", "/readyz", "/{id}", "/jobs/{id}/x"]
ids = st.one_of(st.text(min_size=0, max_size=40), st.sampled_from(["6b0a7a79263e08cfdd383f3c", "0" * 24, "..", "%00"]))
fuzz_requests = st.fixed_dictionaries({
    "method": st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    "path": st.builds(lambda template, value: template.replace("{id}", requests.utils.quote(value, safe="")),
                      st.sampled_from(PATHS), ids),
    "params": st.dictionaries(st.sampled_from(["fid", "scope", "x"]), st.text(max_size=30), max_size=2),
    "auth": st.sampled_from(["none", "valid", "garbage", "basic-admin", "basic-garbage"]),
    "body": st.one_of(st.none(), st.binary(max_size=2048),
                      st.dictionaries(st.text(min_size=1, max_size=10), st.binary(max_size=512), max_size=3)),
})


def test_fuzzing_every_endpoint_gives_no_5xx(stack, admin):
    seen = []

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(fuzz_requests)
    def one_request(spec):
        headers = {
            "none": {},
            "valid": {"Authorization": f"Bearer {admin.token}"},
            "garbage": {"Authorization": "Bearer \x7f!!"},
            "basic-admin": {"Authorization": "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()},
            "basic-garbage": {"Authorization": "Basic %%%"},
        }[spec["auth"]]
        body = spec["body"]
        files = {name: ("f.mp4", data) for name, data in body.items()} if isinstance(body, dict) else None
        data = body if isinstance(body, bytes) else None
        response = requests.request(spec["method"], stack.gateway_url + spec["path"], params=spec["params"],
                                    headers=headers, data=data, files=files, timeout=30)
        seen.append(response.status_code)
        assert response.status_code < 500, (spec, response.status_code, response.text[:300])

    one_request()
    assert len(seen) >= 400
