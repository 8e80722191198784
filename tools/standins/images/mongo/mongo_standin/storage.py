"""What survives a restart, kept in --dbpath as mongod keeps its data there: every collection's documents
(BSON, in insertion order), its indexes, and the users. Written when the server stops (SIGTERM, as
`docker stop` sends) into a new folder that then replaces the old one, so a crash during the write
leaves the previous state whole. A SIGKILL loses what changed since the server started."""

import json
import shutil
from pathlib import Path

import bson
import mongomock

from mongo_standin.users import Users
from mongo_standin.wire import DECODE

FOLDER = "standin"


def save(client: mongomock.MongoClient, users: Users, dbpath: Path) -> None:
    target, fresh = dbpath / FOLDER, dbpath / (FOLDER + ".new")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    catalog = []
    for database in client.list_database_names():
        for name in client[database].list_collection_names():
            collection = client[database][name]
            path = fresh / f"{len(catalog)}.bson"
            with path.open("wb") as out:
                for document in collection.find({}):
                    out.write(bson.encode(document))
            indexes = [
                {"name": index, "key": list(info["key"]), **{k: v for k, v in info.items() if k not in ("key", "v")}}
                for index, info in collection.index_information().items()
                if index != "_id_"
            ]
            catalog.append({"db": database, "collection": name, "file": path.name, "indexes": indexes})
    (fresh / "catalog.json").write_text(json.dumps({"collections": catalog, "users": list(users.records.values())}))
    old = dbpath / (FOLDER + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    fresh.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def load(client: mongomock.MongoClient, dbpath: Path) -> Users:
    folder = dbpath / FOLDER
    if not (folder / "catalog.json").exists():
        return Users()
    catalog = json.loads((folder / "catalog.json").read_text())
    for entry in catalog["collections"]:
        collection = client[entry["db"]][entry["collection"]]
        if entry["collection"] not in client[entry["db"]].list_collection_names():
            client[entry["db"]].create_collection(entry["collection"])
        for index in entry["indexes"]:
            options = {k: v for k, v in index.items() if k not in ("key",)}
            collection.create_index([tuple(pair) for pair in index["key"]], **options)
        documents = bson.decode_file_iter((folder / entry["file"]).open("rb"), DECODE)
        for document in documents:
            collection.insert_one(document)
    return Users(catalog["users"])


def initialized(dbpath: Path) -> bool:
    """Whether a first start has already made this data folder (the entrypoint's first-run test)."""
    return (dbpath / FOLDER / "catalog.json").exists()
