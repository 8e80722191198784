"""`mongosh` of the stand-in: --eval and script files in a JavaScript engine (QuickJS), with `db`,
`quit`, `print`, `printjson` and `process.env` as health checks and /docker-entrypoint-initdb.d scripts
use them. Each `db` call is a command sent over the wire with pymongo, so the shell tests the server
as any client would.

QuickJS (the `quickjs` wheel) runs modern JavaScript and calls Python synchronously, which mongosh's
synchronous API needs; an engine whose calls into Python are asynchronous (V8 through mini-racer)
could not return a command's answer to the script that asked."""

import argparse
import json
import os
import sys
from pathlib import Path
from urllib.parse import quote_plus

import quickjs
from bson import json_util
from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

PRELUDE = (Path(__file__).with_name("shell.js")).read_text()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mongosh", description=__doc__)
    parser.add_argument("address", nargs="?", default="test", help="database, host:port/database or a URI")
    parser.add_argument("files", nargs="*")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27017)
    parser.add_argument("-u", "--username")
    parser.add_argument("-p", "--password")
    parser.add_argument("--authenticationDatabase")
    parser.add_argument("--eval", action="append", default=[])
    parser.add_argument("-f", "--file", action="append", default=[])
    options, ignored = parser.parse_known_args(argv)
    if ignored:  # e.g. --norc, --tls...: nothing this shell would do differently
        print(f"mongosh stand-in: ignoring {' '.join(ignored)}", file=sys.stderr)
    # `mongosh file.js` alone: the first argument is a script, not a database.
    if options.address.endswith(".js"):
        options.files.insert(0, options.address)
        options.address = "test"
    return options


def connection(options: argparse.Namespace) -> tuple[MongoClient, str]:
    if options.address.startswith("mongodb://"):
        uri = options.address
        database = uri.split("/", 3)[3].split("?")[0] if uri.count("/") >= 3 else "test"
    else:
        hostport, _, database = options.address.rpartition("/")
        hostport = hostport or f"{options.host}:{options.port}"
        credentials = ""
        if options.username:
            credentials = f"{quote_plus(options.username)}:{quote_plus(options.password or '')}@"
        source = options.authenticationDatabase or database
        uri = f"mongodb://{credentials}{hostport}/?authSource={source}"
    return MongoClient(uri, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000), database or "test"


class Shell:
    def __init__(self, client: MongoClient, database: str):
        self.client = client
        self.exit_code = None
        self.context = quickjs.Context()
        self.context.add_callable("__command", self.command)
        self.context.add_callable("__print", print)
        self.context.add_callable("__exit", self.set_exit)
        self.context.eval(PRELUDE)
        self.context.eval(f"const process = {{ env: {json.dumps(dict(os.environ))} }};")
        self.context.eval(f"var db = __database({json.dumps(database)});")

    def command(self, database: str, text: str) -> str:
        command = json_util.loads(text)
        try:
            reply = self.client[database].command(command)
        except OperationFailure as exc:
            reply = exc.details or {"ok": 0, "errmsg": str(exc), "code": exc.code}
        return json_util.dumps(reply, json_options=json_util.RELAXED_JSON_OPTIONS)

    def set_exit(self, code) -> None:
        self.exit_code = int(code)

    def run(self, source: str, show_result: bool) -> int | None:
        """None to go on; an exit code once the script quit or failed."""
        try:
            result = self.context.eval(source)
        except quickjs.JSException as exc:
            if self.exit_code is not None:
                return self.exit_code
            print(f"Uncaught {exc}", file=sys.stderr)
            return 1
        if show_result and result is not None:
            print(result.json() if isinstance(result, quickjs.Object) else result)
        return None


def main(argv: list[str] | None = None) -> int:
    options = parse(sys.argv[1:] if argv is None else argv)
    client, database = connection(options)
    try:
        client.admin.command("ping")  # connect (and log in) first, as mongosh does
    except PyMongoError as exc:
        print(f"MongoServerSelectionError: {exc}", file=sys.stderr)
        return 1
    shell = Shell(client, database)
    for source in options.eval:
        if (code := shell.run(source, show_result=True)) is not None:
            return code
    for path in [*options.file, *options.files]:
        if (code := shell.run(Path(path).read_text(), show_result=False)) is not None:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
