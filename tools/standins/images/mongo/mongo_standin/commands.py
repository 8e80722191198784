"""The commands that drivers, GridFS and the shell send, each answered from a mongomock database.

One lock around every command: mongomock is not thread-safe, and mongod's own answers are per
document atomic, which a single lock more than gives."""

import datetime
import threading

import mongomock
from bson.int64 import Int64
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure

from mongo_standin.cursors import Cursors
from mongo_standin.users import AuthError, Users

VERSION = "8.0.12"
WIRE_VERSION = 25
# What a client may do before it has logged in.
OPEN_COMMANDS = {"hello", "ismaster", "ping", "buildinfo", "saslstart", "saslcontinue", "endsessions",
                 "connectionstatus", "logout", "hostinfo", "getparameter", "whatsmyuri"}


def error(message: str, code: int, name: str) -> dict:
    return {"ok": 0.0, "errmsg": message, "code": code, "codeName": name}


class Session:
    """One connection's state: who logged in, and the SCRAM exchange under way."""

    def __init__(self, connection_id: int):
        self.connection_id = connection_id
        self.user = None
        self.conversation = None


class Commands:
    def __init__(self, client: mongomock.MongoClient, users: Users, auth: bool):
        self.client = client
        self.users = users
        self.auth = auth
        self.cursors = Cursors()
        self.lock = threading.Lock()

    def run(self, session: Session, database: str, command: dict) -> dict:
        name = next(iter(command))
        handler = getattr(self, "cmd_" + name.lower(), None)
        if handler is None:
            return error(f"no such command: '{name}'", 59, "CommandNotFound")
        if self.auth and session.user is None and name.lower() not in OPEN_COMMANDS:
            return error(f"Command {name} requires authentication", 13, "Unauthorized")
        with self.lock:
            try:
                return handler(session, database, command)
            except DuplicateKeyError as exc:
                return error(str(exc), 11000, "DuplicateKey")
            except (OperationFailure, AuthError, NotImplementedError, ValueError, TypeError, KeyError) as exc:
                code = getattr(exc, "code", None) or 2
                return error(str(exc), code, "BadValue" if code == 2 else type(exc).__name__)

    # --- handshake, health, sessions -------------------------------------------------------------

    def cmd_hello(self, session, database, command):
        reply = {
            "isWritablePrimary": True, "ismaster": True, "helloOk": True,
            "maxBsonObjectSize": 16 * 1024 * 1024, "maxMessageSizeBytes": 48_000_000, "maxWriteBatchSize": 100_000,
            "localTime": datetime.datetime.now(datetime.UTC), "logicalSessionTimeoutMinutes": 30,
            "connectionId": session.connection_id, "minWireVersion": 0, "maxWireVersion": WIRE_VERSION,
            "readOnly": False, "ok": 1.0,
        }  # fmt: skip
        mechanisms_for = command.get("saslSupportedMechs")
        if mechanisms_for:
            db, _, user = mechanisms_for.partition(".")
            if self.users.exists(db, user):
                reply["saslSupportedMechs"] = ["SCRAM-SHA-256"]
        return reply

    cmd_ismaster = cmd_hello

    def cmd_ping(self, session, database, command):
        return {"ok": 1.0}

    def cmd_buildinfo(self, session, database, command):
        numbers = [int(x) for x in VERSION.split(".")] + [0]
        return {"version": VERSION, "versionArray": numbers, "gitVersion": "stand-in", "bits": 64,
                "maxBsonObjectSize": 16 * 1024 * 1024, "modules": [], "ok": 1.0}

    def cmd_endsessions(self, session, database, command):
        return {"ok": 1.0}

    def cmd_connectionstatus(self, session, database, command):
        users = [{"user": session.user[1], "db": session.user[0]}] if session.user else []
        return {"authInfo": {"authenticatedUsers": users, "authenticatedUserRoles": []}, "ok": 1.0}

    def cmd_whatsmyuri(self, session, database, command):
        return {"you": "", "ok": 1.0}

    def cmd_getparameter(self, session, database, command):
        return {"ok": 1.0}

    # --- authentication and users ------------------------------------------------------------------

    def cmd_saslstart(self, session, database, command):
        session.conversation = self.users.start(database, command["mechanism"], bytes(command["payload"]))
        return {"conversationId": 1, "done": False, "payload": session.conversation.server_first, "ok": 1.0}

    def cmd_saslcontinue(self, session, database, command):
        conversation, session.conversation = session.conversation, None
        if conversation is None:
            return error("No SASL session state found", 17, "ProtocolError")
        try:
            signature = conversation.finish(bytes(command["payload"]))
        except AuthError as exc:
            return error(str(exc), 18, "AuthenticationFailed")
        session.user = (conversation.database, conversation.user)
        return {"conversationId": 1, "done": True, "payload": signature, "ok": 1.0}

    def cmd_logout(self, session, database, command):
        session.user = None
        return {"ok": 1.0}

    def cmd_createuser(self, session, database, command):
        if "pwd" not in command:
            return error("Must provide a 'pwd' field for all user documents", 2, "BadValue")
        roles = [r if isinstance(r, dict) else {"role": r, "db": database} for r in command.get("roles", [])]
        try:
            self.users.create(database, command["createUser"], command["pwd"], roles)
        except AuthError as exc:
            return error(str(exc), 51003, "Location51003")
        return {"ok": 1.0}

    def cmd_dropuser(self, session, database, command):
        if not self.users.drop(database, command["dropUser"]):
            return error(f"User '{command['dropUser']}@{database}' not found", 11, "UserNotFound")
        return {"ok": 1.0}

    def cmd_usersinfo(self, session, database, command):
        wanted = command["usersInfo"]
        name = wanted if isinstance(wanted, str) else wanted.get("user") if isinstance(wanted, dict) else None
        return {"users": self.users.info(database, name), "ok": 1.0}

    # --- reads ----------------------------------------------------------------------------------------

    def _collection(self, database: str, command: dict):
        return self.client[database][next(iter(command.values()))]

    def cmd_find(self, session, database, command):
        collection = self._collection(database, command)
        documents = collection.find(
            command.get("filter") or {},
            command.get("projection") or None,
            skip=command.get("skip", 0),
            limit=abs(command.get("limit", 0)),
            sort=list((command.get("sort") or {}).items()) or None,
        )
        return self.cursors.first_batch(
            f"{database}.{collection.name}", documents, command.get("batchSize"), command.get("singleBatch", False)
        )

    def cmd_getmore(self, session, database, command):
        return self.cursors.get_more(int(command["getMore"]), command.get("batchSize"))

    def cmd_killcursors(self, session, database, command):
        return self.cursors.kill(command.get("cursors", []))

    def cmd_aggregate(self, session, database, command):
        collection = self._collection(database, command)
        documents = collection.aggregate(command.get("pipeline", []))
        batch_size = (command.get("cursor") or {}).get("batchSize")
        return self.cursors.first_batch(f"{database}.{collection.name}", documents, batch_size, False)

    def cmd_count(self, session, database, command):
        collection = self._collection(database, command)
        options = {key: command[key] for key in ("skip", "limit") if command.get(key)}
        return {"n": collection.count_documents(command.get("query") or {}, **options), "ok": 1.0}

    def cmd_distinct(self, session, database, command):
        collection = self._collection(database, command)
        return {"values": collection.distinct(command["key"], command.get("query") or None), "ok": 1.0}

    # --- writes ---------------------------------------------------------------------------------------

    def cmd_insert(self, session, database, command):
        collection = self._collection(database, command)
        inserted, write_errors = 0, []
        for index, document in enumerate(command.get("documents", [])):
            try:
                collection.insert_one(document)
                inserted += 1
            except DuplicateKeyError as exc:
                write_errors.append({"index": index, "code": 11000, "errmsg": str(exc)})
                if command.get("ordered", True):
                    break
        reply = {"n": inserted, "ok": 1.0}
        if write_errors:
            reply["writeErrors"] = write_errors
        return reply

    def cmd_update(self, session, database, command):
        collection = self._collection(database, command)
        matched = modified = 0
        upserted, write_errors = [], []
        for index, spec in enumerate(command.get("updates", [])):
            query, change = spec.get("q") or {}, spec["u"]
            options = {"upsert": spec.get("upsert", False)}
            try:
                if isinstance(change, list):
                    raise NotImplementedError("update pipelines are not supported by this stand-in")
                if any(key.startswith("$") for key in change):
                    if spec.get("arrayFilters"):
                        options["array_filters"] = spec["arrayFilters"]
                    update = collection.update_many if spec.get("multi") else collection.update_one
                    result = update(query, change, **options)
                else:
                    result = collection.replace_one(query, change, **options)
            except DuplicateKeyError as exc:
                write_errors.append({"index": index, "code": 11000, "errmsg": str(exc)})
                if command.get("ordered", True):
                    break
                continue
            if result.upserted_id is not None:
                upserted.append({"index": index, "_id": result.upserted_id})
            matched += result.matched_count
            modified += result.modified_count
        reply = {"n": matched + len(upserted), "nModified": modified, "ok": 1.0}
        if upserted:
            reply["upserted"] = upserted
        if write_errors:
            reply["writeErrors"] = write_errors
        return reply

    def cmd_delete(self, session, database, command):
        collection = self._collection(database, command)
        deleted = 0
        for spec in command.get("deletes", []):
            remove = collection.delete_one if spec.get("limit") == 1 else collection.delete_many
            deleted += remove(spec.get("q") or {}).deleted_count
        return {"n": deleted, "ok": 1.0}

    def cmd_findandmodify(self, session, database, command):
        collection = self._collection(database, command)
        query = command.get("query") or {}
        sort = list((command.get("sort") or {}).items()) or None
        projection = command.get("fields") or None
        before = collection.find_one(query, sort=sort)
        if command.get("remove"):
            value = collection.find_one_and_delete(query, projection, sort=sort)
            return {"lastErrorObject": {"n": int(value is not None)}, "value": value, "ok": 1.0}
        change = command.get("update") or {}
        options = {
            "projection": projection, "sort": sort, "upsert": command.get("upsert", False),
            "return_document": ReturnDocument.AFTER if command.get("new") else ReturnDocument.BEFORE,
        }  # fmt: skip
        if command.get("arrayFilters"):
            options["array_filters"] = command["arrayFilters"]
        if isinstance(change, list):
            raise NotImplementedError("update pipelines are not supported by this stand-in")
        if any(key.startswith("$") for key in change):
            value = collection.find_one_and_update(query, change, **options)
        else:
            value = collection.find_one_and_replace(query, change, **options)
        last_error = {"n": 1 if before is not None or options["upsert"] else 0, "updatedExisting": before is not None}
        if before is None and options["upsert"]:
            after = value if command.get("new") else collection.find_one(query, sort=sort)
            if after is not None:
                last_error["upserted"] = after["_id"]
        return {"lastErrorObject": last_error, "value": value, "ok": 1.0}

    # --- collections, databases, indexes --------------------------------------------------------------

    def cmd_create(self, session, database, command):
        self.client[database].create_collection(command["create"])
        return {"ok": 1.0}

    def cmd_drop(self, session, database, command):
        db = self.client[database]
        if command["drop"] not in db.list_collection_names():
            return error("ns not found", 26, "NamespaceNotFound")
        db.drop_collection(command["drop"])
        return {"ns": f"{database}.{command['drop']}", "ok": 1.0}

    def cmd_dropdatabase(self, session, database, command):
        self.client.drop_database(database)
        return {"dropped": database, "ok": 1.0}

    def cmd_listcollections(self, session, database, command):
        wanted = (command.get("filter") or {}).get("name")
        names = [n for n in self.client[database].list_collection_names() if wanted in (None, n)]
        documents = [{"name": n, "type": "collection", "options": {}, "info": {"readOnly": False}} for n in names]
        return self.cursors.first_batch(f"{database}.$cmd.listCollections", documents, None, False)

    def cmd_listdatabases(self, session, database, command):
        names = self.client.list_database_names()
        databases = [{"name": n, "sizeOnDisk": Int64(0), "empty": False} for n in names]
        if command.get("nameOnly"):
            databases = [{"name": n} for n in names]
        return {"databases": databases, "totalSize": Int64(0), "ok": 1.0}

    def cmd_createindexes(self, session, database, command):
        collection = self._collection(database, command)
        created_collection = collection.name not in self.client[database].list_collection_names()
        before = 0 if created_collection else len(collection.index_information())
        for spec in command.get("indexes", []):
            options = {k: v for k, v in spec.items() if k not in ("key", "v", "ns")}
            collection.create_index(list(spec["key"].items()), **options)
        return {"numIndexesBefore": max(before, 1), "numIndexesAfter": len(collection.index_information()),
                "createdCollectionAutomatically": created_collection, "ok": 1.0}

    def cmd_listindexes(self, session, database, command):
        collection = self._collection(database, command)
        if collection.name not in self.client[database].list_collection_names():
            return error(f"ns does not exist: {database}.{collection.name}", 26, "NamespaceNotFound")
        documents = [
            {"v": 2, "key": dict(info["key"]), "name": name, **{k: v for k, v in info.items() if k not in ("key", "v")}}
            for name, info in collection.index_information().items()
        ]
        return self.cursors.first_batch(f"{database}.{collection.name}", documents, None, False)

    def cmd_dropindexes(self, session, database, command):
        collection = self._collection(database, command)
        wanted = command.get("index")
        if wanted == "*":
            collection.drop_indexes()
        else:
            collection.drop_index(wanted if isinstance(wanted, str) else list(wanted.items()))
        return {"ok": 1.0}

