"""Accounts end to end: a deleted user's or a changed password's tokens stop working, at auth at once
and at the gateway within TOKEN_CACHE_SECONDS; scripts/delete-user takes the user's jobs and files
with them, so that an account made again with the same address starts empty."""

import os
import subprocess
import time

import pytest
import requests

from auth import delete_user
from common import storage
from runlocal import mongo
from runlocal.throwaway import environment
from tests.integration.conftest import TOKEN_CACHE_SECONDS
from tests.integration.test_flow import create_user
from tests.servers import ROOT, Client


def run_script(env, name, *args, stdin=""):
    return subprocess.run([str(ROOT / "scripts" / name), *args], input=stdin, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


def logged_in(stack, env, email, password) -> Client:
    result = create_user(env, email, password)
    assert result.returncode == 0, result.stderr
    client = Client(stack.gateway_url)
    assert client.login(email, password).status_code == 200
    return client


def auth_validates(stack, token: str) -> int:
    return requests.post(f"{stack.auth_url}/validate", headers={"Authorization": f"Bearer {token}"},
                         timeout=10).status_code


def seconds_until_refused(client: Client, limit: float) -> float:
    """How long after now the gateway starts answering 401 to the client's token."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if client.jobs().status_code == 401:
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"the gateway still accepts the token after {limit} s")


def stored(env, job: dict) -> dict:
    db = mongo.connect(env["MONGODB_URI"], env["MONGODB_DB"])
    return {
        "job": db["jobs"].count_documents({"_id": storage.object_id(job["job_id"])}),
        "video": db[f"{storage.VIDEOS}.files"].count_documents({"_id": storage.object_id(job["video_fid"])}),
        "mp3": db[f"{storage.MP3S}.files"].count_documents({"metadata.job_id": job["job_id"]}),
    }


def test_delete_user_revokes_the_token_and_a_new_account_with_the_address_starts_empty(stack, stack_env, samples):
    frank = logged_in(stack, stack_env, "frank@example.com", "frank-password-1")
    upload = frank.upload(samples["faststart.mp4"])
    assert upload.status_code == 202
    job = {**upload.json(), **frank.wait_final(upload.json()["job_id"])}
    assert job["status"] == "done"
    assert [j["job_id"] for j in frank.all_jobs()] == [job["job_id"]]
    assert stored(stack_env, job) == {"job": 1, "video": 0, "mp3": 1}  # the video went once converted

    # In this process, as the stack is: the in-memory MongoDB is this process's own.
    with environment(stack_env):
        assert delete_user.main(["frank@example.com"], connect=mongo.connect) == 0

    assert auth_validates(stack, frank.token) == 401
    assert seconds_until_refused(frank, TOKEN_CACHE_SECONDS + 1) <= TOKEN_CACHE_SECONDS + 0.5
    assert stored(stack_env, job) == {"job": 0, "video": 0, "mp3": 0}
    assert frank.download(job["mp3_fid"]).status_code == 401

    again = logged_in(stack, stack_env, "frank@example.com", "frank-password-1")
    assert again.all_jobs() == []
    assert again.download(job["mp3_fid"]).status_code == 404
    assert frank.jobs().status_code == 401  # the old token does not come back with the address


def test_an_upload_with_a_deleted_users_cached_token_is_never_the_next_accounts_with_the_address(
        stack, stack_env, samples):
    """Within TOKEN_CACHE_SECONDS of the deletion the gateway still takes the old token: its upload
    belongs to the deleted account, not to whoever gets the address next."""
    mallory = logged_in(stack, stack_env, "mallory@example.com", "mallory-password-1")
    assert mallory.jobs().status_code == 200  # the token is now taken on trust for TOKEN_CACHE_SECONDS
    with environment(stack_env):
        assert delete_user.main(["mallory@example.com"], connect=mongo.connect) == 0
    late = mallory.upload(samples["faststart.mp4"])
    assert late.status_code == 202, "the cache still vouches for the token (else this test proves nothing)"

    again = logged_in(stack, stack_env, "mallory@example.com", "mallory-password-1")

    assert again.all_jobs() == []
    assert again.job(late.json()["job_id"]).status_code == 404
    assert again.delete(late.json()["job_id"]).status_code == 404
    # delete-user run again takes what the old account stored, and leaves the new one alone
    with environment(stack_env):
        assert delete_user.main(["mallory@example.com"], connect=mongo.connect) == 0
    assert stored(stack_env, {**late.json(), "job_id": late.json()["job_id"]})["job"] == 0


def test_delete_user_of_nobody_says_so(stack_env):
    with environment(stack_env), pytest.raises(SystemExit, match=r"No user nobody@example\.com"):
        delete_user.main(["nobody@example.com"], connect=mongo.connect)


def test_a_password_change_revokes_earlier_tokens_within_the_cache_time(stack, stack_env):
    grace = logged_in(stack, stack_env, "grace@example.com", "grace-password-1")
    assert grace.jobs().status_code == 200
    changed = run_script(stack_env, "set-password", "grace@example.com", stdin="grace-password-2\n")
    assert changed.returncode == 0, changed.stderr
    assert auth_validates(stack, grace.token) == 401
    assert seconds_until_refused(grace, TOKEN_CACHE_SECONDS + 1) <= TOKEN_CACHE_SECONDS + 0.5
    assert Client(stack.gateway_url).login("grace@example.com", "grace-password-1").status_code == 401
    assert Client(stack.gateway_url).login("grace@example.com", "grace-password-2").status_code == 200


def test_create_user_keeps_the_normalised_address_and_refuses_invisible_characters(stack, stack_env):
    made = create_user(stack_env, "  Heidi@Example.COM ", "heidi-password-1")
    assert made.returncode == 0, made.stderr
    assert "heidi@example.com" in made.stdout
    assert Client(stack.gateway_url).login("heidi@example.com", "heidi-password-1").status_code == 200
    assert create_user(stack_env, "HEIDI@example.com", "another-password").returncode != 0  # the same account
    refused = create_user(stack_env, "ivan\u200b@example.com", "ivan-password-1")
    assert refused.returncode != 0
    assert "invisible" in refused.stderr


def test_scripts_delete_user_deletes_the_account_from_the_command_line(stack, stack_env):
    judy = logged_in(stack, stack_env, "judy@example.com", "judy-password-1")
    result = run_script(stack_env, "delete-user", "Judy@Example.com")
    assert result.returncode == 0, result.stderr
    assert "Deleted user judy@example.com" in result.stdout
    assert auth_validates(stack, judy.token) == 401
    assert Client(stack.gateway_url).login("judy@example.com", "judy-password-1").status_code == 401


def test_delete_user_without_the_jobs_mongodb_deletes_nothing(stack, stack_env):
    logged_in(stack, stack_env, "karl@example.com", "karl-password-1")
    unreachable = {**stack_env, "MONGODB_URI": "mongodb://127.0.0.1:1/"}
    with environment(unreachable), pytest.raises(SystemExit, match="nothing was deleted"):
        delete_user.main(["karl@example.com"])
    assert Client(stack.gateway_url).login("karl@example.com", "karl-password-1").status_code == 200
