"""The in-process MongoDB's unique indexes (runlocal.memory_indexes): the same answers as mongomock's
scan, without scanning the collection on every write."""

import mongomock
import mongomock.collection
import pytest
from bson.errors import InvalidDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from common import storage
from runlocal import memory_indexes, mongo


@pytest.fixture
def chunks(monkeypatch):
    monkeypatch.setattr(mongomock.collection.Collection, "_ensure_uniques", memory_indexes._ensure_uniques)
    collection = mongomock.MongoClient()["test"]["videos.chunks"]
    collection.create_index([("files_id", 1), ("n", 1)], unique=True)
    return collection


def test_a_duplicate_key_is_refused_and_nothing_of_it_stays(chunks):
    chunks.insert_one({"files_id": 1, "n": 0, "data": b"a"})
    with pytest.raises(DuplicateKeyError):
        chunks.insert_one({"files_id": 1, "n": 0, "data": b"b"})
    assert [doc["data"] for doc in chunks.find({"files_id": 1})] == [b"a"]


def test_a_duplicate_within_one_insert_many_is_refused(chunks):
    with pytest.raises(BulkWriteError):
        chunks.insert_many([{"files_id": 2, "n": 0}, {"files_id": 2, "n": 1}, {"files_id": 2, "n": 0}])


def test_a_key_is_free_again_once_its_document_is_deleted_or_changed(chunks):
    chunks.insert_one({"_id": "a", "files_id": 1, "n": 0})
    chunks.delete_one({"_id": "a"})
    chunks.insert_one({"_id": "b", "files_id": 1, "n": 0})
    chunks.update_one({"_id": "b"}, {"$set": {"n": 5}})
    chunks.insert_one({"_id": "c", "files_id": 1, "n": 0})
    assert sorted(doc["n"] for doc in chunks.find()) == [0, 5]


def test_an_update_onto_a_taken_key_is_refused_and_rolled_back(chunks):
    chunks.insert_many([{"_id": "a", "files_id": 1, "n": 0}, {"_id": "b", "files_id": 1, "n": 1}])
    with pytest.raises(DuplicateKeyError):
        chunks.update_one({"_id": "b"}, {"$set": {"n": 0}})
    assert chunks.find_one({"_id": "b"})["n"] == 1
    with pytest.raises(DuplicateKeyError):  # "a" still holds n=0
        chunks.insert_one({"_id": "c", "files_id": 1, "n": 0})


def test_documents_stored_before_the_first_check_count(monkeypatch):
    collection = mongomock.MongoClient()["test"]["users"]
    collection.insert_one({"email": "a@example.com"})
    collection.create_index("email", unique=True)
    monkeypatch.setattr(mongomock.collection.Collection, "_ensure_uniques", memory_indexes._ensure_uniques)
    with pytest.raises(DuplicateKeyError):
        collection.insert_one({"email": "a@example.com"})


def test_storing_a_file_does_not_scan_the_chunks_already_stored(monkeypatch):
    db = mongo.fresh_database()
    storage.ensure_indexes(db)
    videos = storage.bucket(db, storage.VIDEOS)
    eight_chunks = [b"\x00" * (8 * storage.CHUNK_BYTES[storage.VIDEOS])]
    videos.upload_from_chunks("first.mp4", eight_chunks, metadata={})
    scans = []
    original = mongomock.collection.Collection._iter_documents
    monkeypatch.setattr(mongomock.collection.Collection, "_iter_documents",
                        lambda self, *args, **kwargs: scans.append(self.name) or original(self, *args, **kwargs))
    videos.upload_from_chunks("second.mp4", eight_chunks, metadata={})
    assert scans.count("videos.chunks") == 0


def test_a_document_that_is_not_valid_bson_is_still_refused(monkeypatch):
    monkeypatch.setattr(mongomock.collection, "BSON", memory_indexes._BytesBlindBSON)
    collection = mongomock.MongoClient()["test"]["videos.chunks"]
    collection.insert_one({"files_id": 1, "n": 0, "data": b"\x00" * 1024})
    with pytest.raises(InvalidDocument):
        collection.insert_one({"files_id": 1, "n": 1, "data": b"x", "bad": object()})
    assert collection.find_one({"n": 0})["data"] == b"\x00" * 1024
