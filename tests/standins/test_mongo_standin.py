"""The mongo stand-in (tools/standins/images/mongo) without Docker: its server on a real socket, driven by
pymongo as the services drive it, and its mongosh running health checks and initdb scripts."""

import io
import os
import sys
import threading
from pathlib import Path

import gridfs
import pymongo
import pytest
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "standins" / "images" / "mongo"))

from mongo_standin import server, shell

from tests.servers import free_port

ROOT_PASSWORD = "root-secret"


def start(dbpath: Path, port: int):
    running = server.serve(server.parse(["--port", str(port), "--dbpath", str(dbpath), "--auth"]))
    threading.Thread(target=running.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return running


def stop(running, dbpath: Path):
    running.shutdown()
    running.server_close()
    server.save(running, dbpath)


@pytest.fixture
def mongod(tmp_path):
    port = free_port()
    running = start(tmp_path, port)
    running.commands.users.create("admin", "root", ROOT_PASSWORD, [{"role": "root", "db": "admin"}])
    yield port
    stop(running, tmp_path)


def client(port: int, user: str = "root", password: str = ROOT_PASSWORD, source: str = "admin"):
    return pymongo.MongoClient(f"mongodb://{user}:{password}@127.0.0.1:{port}/?authSource={source}",
                               serverSelectionTimeoutMS=3000, tz_aware=True)


def test_gridfs_keeps_a_large_file_whole_through_cursors_and_get_more(mongod):
    db = client(mongod)["mp3converter"]
    bucket = gridfs.GridFSBucket(db, "videos")
    data = os.urandom(200 * 1024 * 1024)
    fid = bucket.upload_from_stream("big.mp4", io.BytesIO(data), metadata={"job_id": "j1"})
    with bucket.open_download_stream(fid) as stream:
        assert stream.read() == data
    assert [f["_id"] for f in db["videos.files"].find({"metadata.job_id": "j1"}, {"_id": 1})] == [fid]
    bucket.delete(fid)
    assert db["videos.chunks"].count_documents({"files_id": fid}) == 0


def test_jobs_as_the_services_use_them(mongod):
    jobs = client(mongod)["mp3converter"]["jobs"]
    jobs.create_index([("owner", 1), ("created_at", pymongo.DESCENDING)])
    jobs.create_index("mp3_fid", sparse=True, unique=True)
    jobs.insert_many([{"owner": "a", "created_at": n, "status": "queued"} for n in range(250)])
    newest = list(jobs.find({"owner": "a"}).sort([("created_at", -1)]).batch_size(30))
    assert [job["created_at"] for job in newest] == list(range(249, -1, -1))
    claimed = jobs.find_one_and_update({"created_at": 7, "status": "queued"}, {"$set": {"status": "converting"},
                                       "$inc": {"attempts": 1}}, return_document=ReturnDocument.AFTER)
    assert (claimed["status"], claimed["attempts"]) == ("converting", 1)
    assert jobs.find_one_and_update({"created_at": 7, "status": "queued"}, {"$set": {"status": "x"}}) is None
    assert jobs.count_documents({"status": "converting"}) == 1
    jobs.update_one({"_id": claimed["_id"]}, {"$set": {"mp3_fid": "m1"}})
    with pytest.raises(DuplicateKeyError):
        jobs.update_one({"created_at": 8}, {"$set": {"mp3_fid": "m1"}})
    assert {"owner_1_created_at_-1", "mp3_fid_1"} <= set(jobs.index_information())


def test_only_the_right_password_logs_in(mongod):
    with pytest.raises(OperationFailure, match="Authentication failed"):
        client(mongod, password="wrong").admin.command("ping")
    with pytest.raises(OperationFailure, match="requires authentication"):
        pymongo.MongoClient(f"mongodb://127.0.0.1:{mongod}/", serverSelectionTimeoutMS=3000).db.jobs.find_one()
    assert client(mongod).admin.command("ping")["ok"] == 1


def test_data_and_users_survive_a_restart(tmp_path):
    port = free_port()
    running = start(tmp_path, port)
    running.commands.users.create("admin", "root", ROOT_PASSWORD, ["root"])
    db = client(port)["mp3converter"]
    fid = gridfs.GridFSBucket(db, "mp3s").upload_from_stream("a.mp3", io.BytesIO(b"x" * 600_000))
    db.jobs.create_index("mp3_fid", unique=True)
    stop(running, tmp_path)

    running = start(tmp_path, port)
    db = client(port)["mp3converter"]
    assert gridfs.GridFSBucket(db, "mp3s").open_download_stream(fid).read() == b"x" * 600_000
    assert db.jobs.index_information()["mp3_fid_1"]["unique"] is True
    stop(running, tmp_path)


def test_mongosh_runs_the_healthcheck_and_an_initdb_script(mongod, tmp_path, monkeypatch, capsys):
    healthcheck = ["--quiet", "--port", str(mongod), "--eval", "quit(db.adminCommand({ping: 1}).ok ? 0 : 1)"]
    assert shell.main(healthcheck) == 0
    script = tmp_path / "10-users.js"
    script.write_text(
        "const app = db.getSiblingDB(process.env.APP_DB);\n"
        "app.createUser({user: process.env.APP_USER, pwd: process.env.APP_PASSWORD,"
        " roles: [{role: 'readWrite', db: process.env.APP_DB}]});\n"
        "print(`created ${process.env.APP_USER}`);\n"
    )
    monkeypatch.setenv("APP_DB", "mp3converter")
    monkeypatch.setenv("APP_USER", "gateway")
    monkeypatch.setenv("APP_PASSWORD", "gw-secret")
    login = ["-u", "root", "-p", ROOT_PASSWORD, "--authenticationDatabase", "admin"]
    assert shell.main(["--quiet", "--port", str(mongod), *login, "test", str(script)]) == 0
    assert "created gateway" in capsys.readouterr().out
    assert client(mongod, "gateway", "gw-secret", "mp3converter")["mp3converter"].command("ping")["ok"] == 1
    # A password may begin with "-" (scripts/init-env's may): the entrypoint passes `--password=...`.
    assert shell.main(["--quiet", "--port", str(mongod), *login, "--eval",
                       "db.getSiblingDB('admin').createUser({user: 'dash', pwd: '-dash', roles: []})"]) == 0
    assert shell.main(["--quiet", "--port", str(mongod), "--username=dash", "--password=-dash",
                       "--authenticationDatabase=admin", "--eval", "quit(db.runCommand({ping: 1}).ok ? 0 : 1)"]) == 0
    # The shell's own helpers do not take a script's top-level names.
    clash = "const database = 'mp3converter'; function run() { return 1; }; quit(db.getName() === 'test' ? 0 : 3)"
    assert shell.main(["--quiet", "--port", str(mongod), "--eval", clash]) == 0
    # A failing command is an uncaught error and a non-zero exit, as in mongosh.
    assert shell.main(["--quiet", "--port", str(mongod), "--eval", "db.jobs.findOne()"]) == 1
    assert shell.main(["--quiet", "--port", str(free_port()), "--eval", "quit(0)"]) == 1
