"""`mongod` of the stand-in: the options compose and the entrypoint use (--bind_ip, --bind_ip_all, --port,
--dbpath, --auth), one thread per connection, the data saved at SIGTERM/SIGINT."""

import argparse
import itertools
import logging
import signal
import socketserver
import sys
import threading
from pathlib import Path

import mongomock

from mongo_standin import storage
from mongo_standin.commands import Commands, Session
from mongo_standin.wire import encode_reply, read_request

log = logging.getLogger("mongod")


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, commands: Commands):
        self.commands = commands
        self.connection_ids = itertools.count(1)
        self.message_ids = itertools.count(1)
        super().__init__(address, Connection)


class Connection(socketserver.BaseRequestHandler):
    def handle(self):
        server: Server = self.server
        session = Session(next(server.connection_ids))
        while True:
            try:
                request = read_request(self.request)
            except (OSError, ValueError) as exc:
                log.warning("connection %d: %s", session.connection_id, exc)
                return
            if request is None:
                return
            reply = server.commands.run(session, request.database, request.command)
            if request.wants_reply:
                self.request.sendall(encode_reply(request, reply, next(server.message_ids)))


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mongod", description=__doc__)
    parser.add_argument("--bind_ip", default="127.0.0.1")
    parser.add_argument("--bind_ip_all", action="store_true")
    parser.add_argument("--port", type=int, default=27017)
    parser.add_argument("--dbpath", type=Path, default=Path("/data/db"))
    parser.add_argument("--auth", action="store_true")
    options, ignored = parser.parse_known_args(argv)
    if ignored:
        log.warning("options this stand-in ignores: %s", " ".join(ignored))
    return options


def serve(options: argparse.Namespace) -> Server:
    client = mongomock.MongoClient()
    options.dbpath.mkdir(parents=True, exist_ok=True)
    users = storage.load(client, options.dbpath)
    commands = Commands(client, users, auth=options.auth)
    host = "0.0.0.0" if options.bind_ip_all else options.bind_ip.split(",")[0]  # noqa: S104
    server = Server((host, options.port), commands)
    log.info("mongod stand-in (mongomock) listening on %s:%d, auth %s", host, options.port,
             "on" if options.auth else "off")
    return server


def save(server: Server, dbpath: Path) -> None:
    with server.commands.lock:
        storage.save(server.commands.client, server.commands.users, dbpath)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s mongod %(levelname)s %(message)s", stream=sys.stdout)
    options = parse(sys.argv[1:] if argv is None else argv)
    server = serve(options)

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    save(server, options.dbpath)
    log.info("data saved in %s; stopped", options.dbpath)


if __name__ == "__main__":
    main()
