"""The converter's handler against mongomock and the real ffmpeg: every input a user can upload."""

import json
import os
import subprocess
import tempfile
import threading
from pathlib import Path
from unittest import mock

import pytest
from pymongo.errors import AutoReconnect, OperationFailure
from tenacity import wait_none

from common import storage
from common.consumer import outcome_of
from common.handler import Action, Delivery
from common.jobs import Jobs
from common.removal import JobDeletion
from common.settings import ConverterSettings, load
from converter import ffmpeg, streamable
from converter import handler as converter_handler
from converter.ffmpeg import Cancelled, ConversionFailed, convert
from converter.handler import Converter
from sample_media import audio_seconds, make_video, module_posing_as_matroska

SETTINGS = dict(rabbitmq_url="amqp://guest:guest@127.0.0.1/", mongodb_uri="mongodb://unused/", video_queue="video",
                mp3_queue="mp3", max_attempts=3)


@pytest.fixture
def converter(memory_db):
    return Converter(load(ConverterSettings, **SETTINGS), memory_db)


@pytest.fixture(autouse=True)
def no_retry_wait(monkeypatch):
    for step in (Converter._fetch, Converter._open_streamable, Converter._store, Converter._remove_leftovers):
        monkeypatch.setattr(step.retry, "wait", wait_none())


def queue_upload(db, path, owner="alice@example.com"):
    with path.open("rb") as source:
        video_fid = storage.bucket(db, storage.VIDEOS).upload_from_stream(path.name, source)
    job = Jobs(db).create(owner, path.name, video_fid)
    return job, {"job_id": str(job["_id"]), "video_fid": str(video_fid), "mp3_fid": None, "owner": owner}


def deliver(converter, message, redelivered=False):
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    return outcome_of(converter, Delivery(body, redelivered), threading.Event())


def mp3_files(db):
    return list(db[f"{storage.MP3S}.files"].find())


@pytest.mark.parametrize("name", ["faststart.mp4", "plain.mp4", "video.mkv", "video.mov", "video.webm"])
def test_a_video_becomes_one_mp3_as_long_as_its_audio(converter, memory_db, samples, tmp_path, name):
    job, message = queue_upload(memory_db, samples[name])

    outcome = deliver(converter, message)

    assert outcome.action is Action.ACK
    done = Jobs(memory_db).get(job["_id"])
    assert (done["status"], done["progress"], done["error"]) == ("done", 100, None)
    assert outcome.publish == (("mp3", {**message, "mp3_fid": str(done["mp3_fid"])}),)
    mp3 = tmp_path / "out.mp3"
    mp3.write_bytes(storage.bucket(memory_db, storage.MP3S).open_download_stream(done["mp3_fid"]).read())
    assert audio_seconds(mp3) == pytest.approx(audio_seconds(samples[name]), abs=0.15)
    assert [f["filename"] for f in mp3_files(memory_db)] == [samples[name].stem + ".mp3"]


@pytest.mark.parametrize(("name", "streamed"), [
    ("faststart.mp4", True), ("video.mkv", True), ("video.mov", True), ("plain.mp4", False),
])
def test_a_video_that_reads_front_to_back_is_piped_to_ffmpeg_and_any_other_goes_through_a_file(
        converter, memory_db, samples, monkeypatch, name, streamed):
    _job, message = queue_upload(memory_db, samples[name])
    sources = []
    real = converter_handler.convert
    monkeypatch.setattr(converter_handler, "convert",
                        lambda source, *args, **kwargs: (sources.append(source), real(source, *args, **kwargs))[1])

    assert deliver(converter, message).action is Action.ACK
    assert isinstance(sources[0], Path) is not streamed


@pytest.mark.parametrize(("name", "expected"), [
    ("faststart.mp4", True), ("video.mkv", True), ("video.mov", True), ("plain.mp4", False),
    ("truncated.mp4", True), ("text.mp4", False), ("empty.mp4", False),
])
def test_only_matroska_and_an_mp4_with_its_index_first_count_as_streamable(samples, name, expected):
    with samples[name].open("rb") as video:
        assert streamable.is_streamable(video) is expected
        assert video.tell() == 0


def test_an_mp4_with_its_index_at_the_end_read_from_a_pipe_never_counts_as_converted(samples, tmp_path):
    # The trap that keeps such files on the temp-file path: from a pipe ffmpeg cannot reach the index.
    with samples["plain.mp4"].open("rb") as source, pytest.raises(ConversionFailed):
        convert(source, tmp_path / "out.mp3", cancel=threading.Event(), timeout=60, max_duration=3600)


def test_a_truncated_video_read_from_a_pipe_fails_as_truncated(converter, memory_db, samples):
    job, message = queue_upload(memory_db, samples["truncated.mp4"])
    assert deliver(converter, message).action is Action.REJECT
    assert "truncated" in Jobs(memory_db).get(job["_id"])["error"]


class BreaksOff:
    """A GridFS download that fails after two reads, as when MongoDB goes away mid-stream."""

    def __init__(self, real):
        self.real, self.reads = real, 0

    def read(self, size=-1):
        self.reads += 1
        if self.reads > 2:
            raise AutoReconnect("mongodb went away")
        return self.real.read(size)

    def seek(self, *args):
        return self.real.seek(*args)

    def close(self):
        self.real.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_storage_lost_while_piping_stops_ffmpeg_and_hands_the_message_back(converter, memory_db, long_video,
                                                                            monkeypatch):
    job, message = queue_upload(memory_db, long_video)
    real_open = converter._videos.open_download_stream
    monkeypatch.setattr(streamable, "is_streamable", lambda video: True)
    monkeypatch.setattr(converter._videos, "open_download_stream", lambda fid: BreaksOff(real_open(fid)))

    assert deliver(converter, message).action is Action.REQUEUE
    assert Jobs(memory_db).get(job["_id"])["status"] == "converting"
    assert mp3_files(memory_db) == []


@pytest.mark.parametrize(("name", "reason"), [
    ("silent.mp4", "no audio track"),
    ("truncated.mp4", "truncated"),
    ("text.mp4", "not a video in a supported format"),
    ("empty.mp4", "not a video in a supported format"),
])
def test_a_file_that_cannot_convert_fails_the_job_with_a_reason_and_is_dead_lettered(
        converter, memory_db, samples, name, reason):
    job, message = queue_upload(memory_db, samples[name])

    outcome = deliver(converter, message)

    assert outcome.action is Action.REJECT
    failed = Jobs(memory_db).get(job["_id"])
    assert failed["status"] == "failed"
    assert reason in failed["error"]
    assert mp3_files(memory_db) == []


def test_a_redelivered_message_for_a_done_job_announces_the_same_mp3_and_makes_no_second(
        converter, memory_db, samples):
    _job, message = queue_upload(memory_db, samples["faststart.mp4"])
    first = deliver(converter, message)

    again = deliver(converter, message, redelivered=True)

    assert again.action is Action.ACK
    assert again.publish == first.publish
    assert len(mp3_files(memory_db)) == 1


def test_an_mp3_left_by_a_crashed_attempt_is_replaced_not_kept(converter, memory_db, samples):
    job, message = queue_upload(memory_db, samples["faststart.mp4"])
    storage.bucket(memory_db, storage.MP3S).upload_from_stream(
        "leftover.mp3", b"half an mp3", metadata={"job_id": str(job["_id"])})

    deliver(converter, message, redelivered=True)

    files = mp3_files(memory_db)
    assert len(files) == 1
    assert files[0]["_id"] == Jobs(memory_db).get(job["_id"])["mp3_fid"]


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"video_fid": "x"}', b'{"job_id": 7}', b"\xff\xfe"])
def test_a_malformed_message_is_dead_lettered(converter, body):
    outcome = deliver(converter, body)
    assert outcome.action is Action.REJECT
    assert "malformed" in outcome.reason


def test_a_message_whose_job_id_is_not_an_id_is_dead_lettered(converter):
    outcome = deliver(converter, {"job_id": "../../etc", "video_fid": "x"})
    assert outcome.action is Action.REJECT
    assert "malformed" in outcome.reason


def test_a_message_for_a_job_that_no_longer_exists_is_acked_and_leaves_no_mp3(converter, memory_db):
    job_id = "6b0a7a79263e08cfdd383f3c"
    # An MP3 that an attempt stored just before the job was deleted and the worker died.
    storage.bucket(memory_db, storage.MP3S).upload_from_stream("late.mp3", b"mp3", metadata={"job_id": job_id})

    outcome = deliver(converter, {"job_id": job_id, "video_fid": "x"}, redelivered=True)

    assert (outcome.action, outcome.publish) == (Action.ACK, ())
    assert mp3_files(memory_db) == []


def test_a_missing_video_fails_the_job(converter, memory_db, samples):
    job, message = queue_upload(memory_db, samples["faststart.mp4"])
    storage.bucket(memory_db, storage.VIDEOS).delete(job["video_fid"])

    outcome = deliver(converter, message)

    assert outcome.action is Action.REJECT
    assert "no longer in storage" in Jobs(memory_db).get(job["_id"])["error"]


def test_after_max_attempts_the_job_fails_instead_of_looping(converter, memory_db, samples):
    job, message = queue_upload(memory_db, samples["faststart.mp4"])
    for _ in range(3):  # three deliveries that died mid-way (crash: no outcome reached the broker)
        Jobs(memory_db).start_attempt(job["_id"])

    outcome = deliver(converter, message, redelivered=True)

    assert outcome.action is Action.REJECT
    failed = Jobs(memory_db).get(job["_id"])
    assert failed["status"] == "failed"
    assert "3 attempts" in failed["error"]


def test_transient_storage_errors_are_retried_then_succeed(converter, memory_db, samples):
    job, message = queue_upload(memory_db, samples["faststart.mp4"])
    mp3s = converter._mp3s
    real_upload = mp3s.upload_from_chunks
    failures = iter([AutoReconnect("blip"), AutoReconnect("blip")])

    def flaky(*args, **kwargs):
        error = next(failures, None)
        if error:
            raise error
        return real_upload(*args, **kwargs)

    with mock.patch.object(mp3s, "upload_from_chunks", side_effect=flaky) as upload:
        outcome = deliver(converter, message)

    assert upload.call_count == 3
    assert outcome.action is Action.ACK
    assert Jobs(memory_db).get(job["_id"])["status"] == "done"


def test_storage_that_stays_down_hands_the_message_back_until_attempts_run_out(converter, memory_db, samples):
    """An outage longer than the retries is not the file's fault: the message goes back to the queue and
    the job stays open, so it converts once MongoDB answers; MAX_ATTEMPTS still bounds it."""
    job, message = queue_upload(memory_db, samples["faststart.mp4"])

    with mock.patch.object(converter._mp3s, "upload_from_chunks", side_effect=AutoReconnect("down")) as upload:
        outcomes = [deliver(converter, message, redelivered=n > 0) for n in range(4)]

    assert upload.call_count == 3 * 4
    assert [o.action for o in outcomes] == [Action.REQUEUE] * 3 + [Action.REJECT]
    failed = Jobs(memory_db).get(job["_id"])
    assert failed["status"] == "failed"
    assert "Gave up after 3 attempts" in failed["error"]
    assert mp3_files(memory_db) == []


def test_after_a_storage_outage_the_handed_back_job_converts_once(converter, memory_db, samples):
    job, message = queue_upload(memory_db, samples["faststart.mp4"])
    with mock.patch.object(converter._mp3s, "upload_from_chunks", side_effect=AutoReconnect("down")):
        assert deliver(converter, message).action is Action.REQUEUE
    assert Jobs(memory_db).get(job["_id"])["status"] == "converting"

    assert deliver(converter, message, redelivered=True).action is Action.ACK
    assert Jobs(memory_db).get(job["_id"])["status"] == "done"
    assert len(mp3_files(memory_db)) == 1


def test_a_cancelled_conversion_is_handed_back_and_leaves_nothing(converter, memory_db, samples):
    job, message = queue_upload(memory_db, samples["faststart.mp4"])
    cancel = threading.Event()
    cancel.set()

    outcome = outcome_of(converter, Delivery(json.dumps(message).encode(), False), cancel)

    assert outcome.action is Action.REQUEUE
    assert mp3_files(memory_db) == []
    assert Jobs(memory_db).get(job["_id"])["status"] == "converting"


def test_progress_is_reported_while_converting(converter, memory_db, samples):
    _job, message = queue_upload(memory_db, samples["faststart.mp4"])
    seen = []
    jobs = converter._jobs
    real = jobs.set_progress
    with mock.patch.object(jobs, "set_progress", side_effect=lambda j, p: (seen.append(p), real(j, p))):
        deliver(converter, message)
    assert seen, "no progress reported"
    assert all(0 <= p <= 99 for p in seen)
    assert seen == sorted(seen)


def test_a_redelivery_while_mongodb_is_unreachable_is_handed_back_not_dead_lettered(converter, memory_db, samples):
    """During a MongoDB outage even reading the job fails; that is no reason to give up on the message."""
    job, message = queue_upload(memory_db, samples["faststart.mp4"])
    with mock.patch.object(Jobs, "of_message", side_effect=AutoReconnect("mongodb: connection refused")):
        outcomes = [deliver(converter, message, redelivered=True) for _ in range(3)]
    assert [o.action for o in outcomes] == [Action.REQUEUE] * 3

    assert deliver(converter, message, redelivered=True).action is Action.ACK
    assert Jobs(memory_db).get(job["_id"])["status"] == "done"


def test_a_storage_error_that_is_not_an_outage_fails_the_job_with_a_reason(converter, memory_db, samples):
    job, message = queue_upload(memory_db, samples["faststart.mp4"])
    with mock.patch.object(converter._mp3s, "upload_from_chunks", side_effect=OperationFailure("bad document")):
        outcome = deliver(converter, message)
    assert outcome.action is Action.REJECT
    failed = Jobs(memory_db).get(job["_id"])
    assert failed["status"] == "failed"
    assert "Storage failed" in failed["error"]


# ---------------------------------------------------------------- deletion and what is kept


def stored_counts(db) -> dict[str, int]:
    return {name: db[name].count_documents({}) for name in
            ("jobs", "videos.files", "videos.chunks", "mp3s.files", "mp3s.chunks")}


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """Five minutes of sound: ffmpeg reports progress several times before it could finish."""
    return make_video(tmp_path_factory.mktemp("long") / "long.mp4", 300, size="64x48", rate=1)


def test_a_job_deleted_while_converting_stops_ffmpeg_stores_nothing_and_is_acked(converter, memory_db, long_video):
    job, message = queue_upload(memory_db, long_video)
    jobs, real_progress = converter._jobs, converter._jobs.set_progress
    reports = []

    def owner_deletes_at_the_first_report(job_id, percent):
        if not reports:
            assert JobDeletion(memory_db).delete_owned(job_id, "alice@example.com")
        reports.append(percent)
        return real_progress(job_id, percent)

    ended = []

    def conversion(*args, **kwargs):
        try:
            return convert(*args, **kwargs)
        except Exception as error:
            ended.append(error)
            raise

    with mock.patch.object(jobs, "set_progress", side_effect=owner_deletes_at_the_first_report), \
            mock.patch("converter.handler.convert", side_effect=conversion):
        outcome = deliver(converter, message)

    assert (outcome.action, outcome.publish) == (Action.ACK, ())
    assert reports and reports[-1] < 99
    assert [type(error) for error in ended] == [Cancelled]  # ffmpeg was killed, not waited for
    assert stored_counts(memory_db) == dict.fromkeys(stored_counts(memory_db), 0)
    assert Jobs(memory_db).get(job["_id"]) is None


def test_a_job_deleted_between_storing_its_mp3_and_finishing_keeps_no_mp3(converter, memory_db, samples):
    job, message = queue_upload(memory_db, samples["faststart.mp4"])
    real_store = converter._store

    def store_then_owner_deletes(mp3, job_doc):
        mp3_fid = real_store(mp3, job_doc)
        assert JobDeletion(memory_db).delete_owned(job["_id"], "alice@example.com")
        return mp3_fid

    with mock.patch.object(converter, "_store", side_effect=store_then_owner_deletes):
        outcome = deliver(converter, message)

    assert (outcome.action, outcome.publish) == (Action.ACK, ())
    assert stored_counts(memory_db) == dict.fromkeys(stored_counts(memory_db), 0)


def test_a_job_deleted_before_its_turn_is_acked_without_converting(converter, memory_db, samples):
    job, message = queue_upload(memory_db, samples["faststart.mp4"])
    assert JobDeletion(memory_db).delete_owned(job["_id"], "alice@example.com")

    with mock.patch("converter.handler.convert") as conversion:
        outcome = deliver(converter, message)

    assert (outcome.action, outcome.publish) == (Action.ACK, ())
    conversion.assert_not_called()
    assert stored_counts(memory_db) == dict.fromkeys(stored_counts(memory_db), 0)


def test_the_video_goes_once_its_mp3_is_announced(converter, memory_db, samples):
    job, message = queue_upload(memory_db, samples["faststart.mp4"])
    before = stored_counts(memory_db)

    outcome = deliver(converter, message)
    assert outcome.action is Action.ACK
    announced = stored_counts(memory_db)  # the user is not kept waiting for the video's removal
    outcome.then()  # once the consumer has sent the announcement and acked the delivery

    after = stored_counts(memory_db)
    assert before["videos.files"] == 1 and before["videos.chunks"] >= 1
    assert announced == before | {"mp3s.files": 1, "mp3s.chunks": announced["mp3s.chunks"]}
    assert (after["videos.files"], after["videos.chunks"]) == (0, 0)
    assert (after["mp3s.files"], after["jobs"]) == (1, 1)
    assert Jobs(memory_db).get(job["_id"])["status"] == "done"


@pytest.mark.parametrize("name", ["plain.mp4", "silent.mp4"])
def test_the_work_folder_goes_after_the_announcement_or_at_once_on_failure(converter, memory_db, samples, tmp_path,
                                                                          monkeypatch, name):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _job, message = queue_upload(memory_db, samples[name])  # plain.mp4: its index at the end, a temp copy

    outcome = deliver(converter, message)
    left = list(tmp_path.iterdir())
    if outcome.then is not None:
        outcome.then()

    assert (outcome.action, len(left)) == ((Action.ACK, 1) if name == "plain.mp4" else (Action.REJECT, 0))
    assert list(tmp_path.iterdir()) == []


def test_keep_videos_keeps_the_video(memory_db, samples):
    converter = Converter(load(ConverterSettings, **SETTINGS, keep_videos=True), memory_db)
    _job, message = queue_upload(memory_db, samples["faststart.mp4"])
    before = stored_counts(memory_db)

    outcome = deliver(converter, message)
    assert outcome.action is Action.ACK
    outcome.then()

    assert stored_counts(memory_db)["videos.chunks"] == before["videos.chunks"] > 0


def test_a_failed_jobs_video_goes_too(converter, memory_db, samples):
    job, message = queue_upload(memory_db, samples["silent.mp4"])

    assert deliver(converter, message).action is Action.REJECT

    assert Jobs(memory_db).get(job["_id"])["status"] == "failed"
    counts = stored_counts(memory_db)
    assert (counts["videos.files"], counts["videos.chunks"], counts["mp3s.files"]) == (0, 0, 0)


def test_a_video_left_by_an_attempt_that_died_after_finishing_goes_at_the_redelivery(converter, memory_db, samples):
    _job, message = queue_upload(memory_db, samples["faststart.mp4"])
    with mock.patch.object(converter, "_drop_video"):  # the worker dies before removing the video
        first = deliver(converter, message)
    assert stored_counts(memory_db)["videos.files"] == 1

    again = deliver(converter, message, redelivered=True)

    assert again.publish == first.publish
    assert stored_counts(memory_db)["videos.files"] == 0


def test_a_failed_jobs_video_left_by_an_attempt_that_died_goes_at_the_redelivery(converter, memory_db, samples):
    job, message = queue_upload(memory_db, samples["silent.mp4"])
    with mock.patch.object(converter, "_drop_video"):
        assert deliver(converter, message).action is Action.REJECT
    assert stored_counts(memory_db)["videos.files"] == 1

    assert deliver(converter, message, redelivered=True).action is Action.REJECT

    assert stored_counts(memory_db)["videos.files"] == 0
    assert Jobs(memory_db).get(job["_id"])["status"] == "failed"


# ---------------------------------------------------------------- hostile files


def test_a_tracker_module_posing_as_matroska_fails_at_once_with_a_reason(memory_db, tmp_path):
    """The file from the review: `filetype` calls it video/x-matroska, and ffmpeg, left to choose,
    opens it with its tracker decoder and spends half an hour of CPU on its 88 hours. Opened as the
    Matroska it claims to be, it fails at once (unbounded, it would run into the 30 s timeout and
    fail with another reason)."""
    converter = Converter(load(ConverterSettings, **SETTINGS, convert_timeout_seconds=30), memory_db)
    job, message = queue_upload(memory_db, module_posing_as_matroska(tmp_path / "song.mkv"))

    outcome = deliver(converter, message)

    assert outcome.action is Action.REJECT
    failed = Jobs(memory_db).get(job["_id"])
    assert failed["status"] == "failed"
    assert failed["error"] == "The file is corrupt or truncated: ffmpeg cannot read it as a video."
    assert mp3_files(memory_db) == []


def test_a_file_the_gateway_would_refuse_is_not_given_to_ffmpeg(memory_db, tmp_path):
    """A file stored before the gateway's list changed, or put there another way: an audio file that
    ffmpeg would happily convert."""
    audio = tmp_path / "song.mp3"
    subprocess.run([ffmpeg.ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=duration=2", str(audio)],
                   check=True)
    converter = Converter(load(ConverterSettings, **SETTINGS), memory_db)
    job, message = queue_upload(memory_db, audio)

    with mock.patch("converter.ffmpeg.subprocess.Popen", wraps=subprocess.Popen) as runs:
        assert deliver(converter, message).action is Action.REJECT

    assert Jobs(memory_db).get(job["_id"])["error"] == ffmpeg.NOT_SUPPORTED
    runs.assert_not_called()


def test_a_video_declaring_more_than_max_duration_seconds_fails_with_its_duration(memory_db, samples):
    converter = Converter(load(ConverterSettings, **SETTINGS, max_duration_seconds=3), memory_db)
    job, message = queue_upload(memory_db, samples["faststart.mp4"])  # 4 s

    outcome = deliver(converter, message)

    assert outcome.action is Action.REJECT
    assert Jobs(memory_db).get(job["_id"])["error"] == \
        "The video lasts 0:00:04; videos up to 0:00:03 are converted."
    assert mp3_files(memory_db) == []


def test_a_long_video_over_max_duration_seconds_is_stopped_at_the_first_progress_report(memory_db, long_video):
    converter = Converter(load(ConverterSettings, **SETTINGS, max_duration_seconds=60), memory_db)
    job, message = queue_upload(memory_db, long_video)  # 300 s
    reports = []
    real_progress = converter._jobs.set_progress

    def record(job_id, percent):
        reports.append(percent)
        return real_progress(job_id, percent)

    with mock.patch.object(converter._jobs, "set_progress", side_effect=record):
        assert deliver(converter, message).action is Action.REJECT

    assert Jobs(memory_db).get(job["_id"])["error"] == "The video lasts 0:05:00; videos up to 0:01:00 are converted."
    assert reports == []  # stopped before its first report reached the job


def test_a_video_declaring_no_duration_is_cut_at_max_duration_seconds_and_fails(memory_db, tmp_path):
    """A Matroska stream written to a pipe has no duration in its header: the bound on the output stops it."""
    streamed = tmp_path / "streamed.mkv"
    with streamed.open("wb") as out:
        subprocess.run([ffmpeg.ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=duration=8",
                        "-c:a", "libopus", "-f", "matroska", "pipe:1"], stdout=out, check=True)
    header = subprocess.run([ffmpeg.ffmpeg_exe(), "-hide_banner", "-i", str(streamed)], capture_output=True)
    assert b"Duration: N/A" in header.stderr
    converter = Converter(load(ConverterSettings, **SETTINGS, max_duration_seconds=3), memory_db)
    job, message = queue_upload(memory_db, streamed)

    assert deliver(converter, message).action is Action.REJECT

    assert Jobs(memory_db).get(job["_id"])["error"] == \
        "The video lasts longer than 0:00:03, the longest converted."
    assert mp3_files(memory_db) == []


@pytest.fixture
def ffmpeg_spy(tmp_path, monkeypatch):
    """ffmpeg behind a shell that records, for each run, the environment and limits it was given."""
    record = tmp_path / "runs"
    record.mkdir()
    spy = tmp_path / "ffmpeg"
    spy.write_text(f"""#!/bin/sh
cat /proc/$$/environ > {record}/$$.environ
cat /proc/$$/limits > {record}/$$.limits
exec {ffmpeg.ffmpeg_exe()} "$@"
""")
    spy.chmod(0o755)
    monkeypatch.setattr(ffmpeg, "ffmpeg_exe", lambda: str(spy))
    return record


def test_ffmpeg_gets_an_empty_environment_and_resource_limits(memory_db, samples, ffmpeg_spy, monkeypatch):
    secrets = {"MONGODB_URI": "mongodb://converter:s3cret@mongodb:27017/", "RABBITMQ_URL": "amqp://c:s3cret@rabbit/",
               "SMTP_PASSWORD": "s3cret"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    assert all(os.environ[name] == value for name, value in secrets.items())
    converter = Converter(load(ConverterSettings, **SETTINGS, convert_timeout_seconds=600,
                               max_duration_seconds=7200), memory_db)
    job, message = queue_upload(memory_db, samples["faststart.mp4"])

    assert deliver(converter, message).action is Action.ACK

    assert Jobs(memory_db).get(job["_id"])["status"] == "done"
    runs = sorted(ffmpeg_spy.glob("*.environ"))
    assert len(runs) == 1
    for environ in runs:
        assert environ.read_bytes() == b""
        table = environ.with_suffix(".limits").read_text().splitlines()
        limits = {line[:26].strip(): line[26:].split() for line in table}
        assert limits["Max cpu time"][:2] == ["600", "605"]
        output_bytes = 7200 * ffmpeg.MP3_BYTES_PER_SECOND + 1024 * 1024
        assert limits["Max file size"][:2] == [str(output_bytes + ffmpeg.FILE_SIZE_MARGIN)] * 2
        assert limits["Max address space"][:2] == [str(ffmpeg.ADDRESS_SPACE_BYTES)] * 2


def test_the_limits_stop_an_ffmpeg_that_writes_too_much(tmp_path):
    """The kernel's file size limit holds even where ffmpeg's own -fs would not be asked."""
    limits = ffmpeg.Limits(max_duration_seconds=1, cpu_seconds=60)
    target = tmp_path / "big.wav"
    run = subprocess.run([ffmpeg.ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "anoisesrc=duration=600",
                          "-f", "wav", str(target)], capture_output=True, **ffmpeg.sandboxed(limits))
    assert run.returncode != 0
    assert target.stat().st_size <= limits.output_bytes + ffmpeg.FILE_SIZE_MARGIN
